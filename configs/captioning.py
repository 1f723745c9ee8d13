# pylint: disable=line-too-long
r"""Captioning with a PaLI-style model (frozen ViT + T5): FT, LoRA, PT and AdaLink per modality.

Download-free smoke run (tiny ViT + tiny T5 on the project's 12 synthetic captioned images):
  python scripts/train.py --config=configs/captioning.py:smoke --workdir=/tmp/cap

The Flickr8k images in ../shared (1,000 photos, 5 captions each), small model, a few hundred steps:
  python scripts/train.py --config=configs/captioning.py:adalink_r64,data=flickr8k --workdir=/tmp/f8k

Variants (the paper's rows, Tables 1-3): ft, lora_r16 (raw) / lora_r4 (instruction-tuned), pt
(64 prompt tokens after the image tokens), adalink_r64 (one adapter per modality), unified_r128
(one adapter of rank 2r over both modalities), and the Table 2 sweep adalink_r4 / r16 / r64 /
r256. Options: `,data=tiny|flickr8k|coco|textcaps`, `,size=NAME` (T5), `,vit=NAME`. PEFT uses LR
0.03 and FT 1e-4 (the paper's multimodal settings). COCO and TextCaps need their annotation JSON
and image folders: --config.data.annotation_file, --config.data.image_dir.
"""

import os
import re

import ml_collections

from configs import glue as glue_configs

_HERE = os.path.dirname(os.path.abspath(__file__))
SHARED = os.path.join(_HERE, "..", "..", "shared")
_VARIANT = re.compile(r"^(ft|pt|lora|adalink|unified)(?:_r(\d+))?$")
_DATA = ("tiny", "flickr8k", "coco", "textcaps")


def base_config() -> ml_collections.ConfigDict:
  c = glue_configs.base_config()
  c.model.kind = "pali"
  c.model.size = "tiny"
  c.model.vit_size = "tiny"
  c.model.image_size = 32
  c.model.vit_checkpoint = ""  # HF ViT/SigLIP dir or big_vision .npz; "" = random (seeded)
  c.model.init = "random"
  c.model.vocab = "byte"
  c.model.dtype = "float32"
  c.model.dropout_rate = 0.1

  c.data = ml_collections.ConfigDict()
  c.data.kind = "captioning"
  c.data.dataset = "image_captions"  # or coco_karpathy, textcaps
  c.data.annotation_file = "{package}/data/testdata/captions_tiny/captions.json"
  c.data.image_dir = ""
  c.data.validation_annotation_file = ""
  c.data.validation_fraction = 0.25
  c.data.normalization = "minus_one_to_one"
  c.data.prompt = "caption en"
  c.data.inputs_length = 16
  c.data.targets_length = 48
  c.data.batch_size = 8
  c.data.pack = False
  c.data.host_split = "shard"

  c.schedule.peak_lr = 0.03
  c.schedule.warmup_steps = 20
  c.train.num_steps = 300
  c.train.log_every = 25
  c.train.checkpoint_every = 150
  c.eval.every_steps = 150
  c.eval.batch_size = 8
  c.eval.max_examples = 0
  c.eval.max_decode_len = 48
  c.eval.best_metric = "average"
  return c


def method_section(name: str, rank: int) -> ml_collections.ConfigDict:
  if name in ("adalink", "unified"):
    return ml_collections.ConfigDict(
      {
        "name": "adalink",
        "rank": rank,
        "streams": ("image", "text"),
        "unified": name == "unified",
        "activation": "linear",
        "dropout_rate": 0.1,
      }
    )
  if name == "pt":
    return ml_collections.ConfigDict(
      {
        "name": "pt",
        "num_prompts": 64,
        "reparam_hidden": 64,
        "prompt_init": "vocab",
        "dropout_rate": 0.05,
      }
    )
  return glue_configs.method_section(name, rank)


def _usage(why):
  return (
    f"configs/captioning.py: {why}. Variants: ft, pt, lora_rN, adalink_rN, unified_rN, "
    f"smoke; options ,data={'|'.join(_DATA)} ,size=T5SIZE ,vit=VITSIZE"
  )


def get_config(arg: str = "smoke") -> ml_collections.ConfigDict:
  parts = [a for a in (arg or "").split(",") if a]
  if not parts:
    raise ValueError(_usage("no variant given"))
  variant, opts = parts[0], {}
  for kv in parts[1:]:
    k, _, v = kv.partition("=")
    if k not in ("data", "size", "vit") or not v:
      raise ValueError(_usage(f"bad option {kv!r}"))
    opts[k] = v
  c = base_config()
  if variant == "smoke":
    c.method = method_section("adalink", 8)
    c.train.num_steps = 60
    c.train.log_every = 10
    c.train.checkpoint_every = 60
    c.eval.every_steps = 0
  else:
    m = _VARIANT.match(variant)
    if not m:
      raise ValueError(_usage(f"unknown variant {variant!r}"))
    name, rank = m.group(1), m.group(2)
    if name in ("ft", "pt") and rank:
      raise ValueError(_usage(f"method {name!r} takes no rank"))
    if name in ("lora", "adalink", "unified") and not rank:
      raise ValueError(_usage(f"{name} needs a rank, e.g. {name}_r16"))
    c.method = method_section(name, int(rank) if rank else 0)
    if name == "ft":
      c.schedule.peak_lr = 1e-4
  data = opts.get("data", "tiny")
  if data not in _DATA:
    raise ValueError(_usage(f"unknown data {data!r}"))
  if data == "flickr8k":
    c.data.annotation_file = os.path.join(SHARED, "data", "captions-flickr8k-1k", "captions.json")
    c.data.validation_fraction = 0.1
    c.model.image_size = 64
    c.model.vit_size = "tiny"
    # A small language model (T5 1.1 mini dims) with the byte vocabulary's table size.
    c.model.size = "mini"
    c.model.vocab_size = 384
  elif data in ("coco", "textcaps"):
    c.data.dataset = "coco_karpathy" if data == "coco" else "textcaps"
    c.data.annotation_file = ""
    c.model.image_size = 224
  if "size" in opts:
    c.model.size = opts["size"]
  if "vit" in opts:
    c.model.vit_size = opts["vit"]
  return c
