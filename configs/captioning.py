# pylint: disable=line-too-long
r"""Captioning with a PaLI-style model (frozen ViT + T5): FT, LoRA, PT and AdaLink per modality.

Download-free smoke run (tiny ViT + tiny T5 on the project's 12 synthetic captioned images):
  python scripts/train.py --config=configs/captioning.py:smoke --workdir=/tmp/cap

The Flickr8k images in ../shared (1,000 photos, 5 captions each), small model, a few hundred steps:
  python scripts/train.py --config=configs/captioning.py:adalink_r64,data=flickr8k --workdir=/tmp/f8k

Variants (the paper's rows, Tables 1-3): ft, lora_r16 (raw) / lora_r4 (instruction-tuned), pt
(64 prompt tokens after the image tokens), adalink_r64 (one adapter per modality), unified_r128
(one adapter of rank 2r over both modalities), and the Table 2 sweep adalink_r4 / r16 / r64 /
r256. Options: `,data=tiny|flickr8k|coco|textcaps` (captioning) or
`,data=vqa_tiny|vqav2|okvqa|textvqa|stvqa|docvqa` (VQA, Table 4: the prompt `answer en <question>`,
VQA accuracy or ANLS), `,size=NAME` (T5), `,vit=NAME`. PEFT uses LR
0.03 and FT 1e-4 (the paper's multimodal settings). COCO and TextCaps need their annotation JSON
and image folders: --config.data.annotation_file, --config.data.image_dir.
"""

import os
import re

import ml_collections

from configs import common

SHARED = common.SHARED
VARIANTS = ("smoke", re.compile(r"(ft|pt|lora|adalink|unified)(?:_r(\d+))?"))
DATASETS = ("tiny", "flickr8k", "coco", "textcaps")
# Table 4's VQA sets: OK-VQA shares the VQA v2 layout; ST-VQA and DocVQA are scored by ANLS.
VQA_DATASETS = ("vqa_tiny", "vqav2", "okvqa", "textvqa", "stvqa", "docvqa")
OPTIONS = {
  "data": common.one_of(*DATASETS, *VQA_DATASETS),
  "size": common.text("T5SIZE"),
  "vit": common.text("VITSIZE"),
}
_VARIANTS_HELP = "smoke, ft, pt, lora_rN, adalink_rN, unified_rN"


def captioning_data(**overrides) -> ml_collections.ConfigDict:
  """Images with reference captions from an annotation JSON (the package's 12 synthetic images
  by default); the model reads a fixed text prompt and writes the caption."""
  return common.section(
    **{
      "kind": "captioning",
      "dataset": "image_captions",  # or coco_karpathy, textcaps
      "annotation_file": "{package}/data/fixtures/testdata/captions_tiny/captions.json",
      "image_dir": "",
      "validation_annotation_file": "",
      "validation_fraction": 0.25,  # of the images, when the annotations have no split
      "normalization": "minus_one_to_one",
      "prompt": "caption en",
      "inputs_length": 16,
      "targets_length": 48,
      "batch_size": 8,
      "pack": False,
      "host_split": "shard",
      **overrides,
    }
  )


def vqa_data(**overrides):
  """Visual question answering: the prompt `answer en <question>`, the answer as the target,
  scored by VQA accuracy against every human answer. Default: the package's 36 synthetic
  questions about the tiny captioning pictures; `vqav2` (or OK-VQA, the same layout) needs its
  question / annotation files and the COCO image folders."""
  return common.section(
    **{
      "kind": "vqa",
      "dataset": "vqa_json",  # or vqav2
      "annotation_file": "{package}/data/fixtures/testdata/vqa_tiny/questions.json",
      "image_dir": "",
      "validation_fraction": 0.25,
      "question_file": "",  # vqav2: v2_OpenEnded_mscoco_train2014_questions.json
      "image_template": "COCO_train2014_{:012d}.jpg",
      "validation_question_file": "",
      "validation_annotation_file": "",
      "validation_image_dir": "",
      "validation_image_template": "COCO_val2014_{:012d}.jpg",
      "normalization": "minus_one_to_one",
      "prompt": "answer en",
      "inputs_length": 32,
      "targets_length": 8,
      "batch_size": 8,
      "pack": False,
      "host_split": "shard",
      **overrides,
    }
  )


def use_vqa(c: ml_collections.ConfigDict, data: str) -> None:
  """Switches a config to the VQA set `data` (one of VQA_DATASETS): the data section, the answer
  length as the decode length, and for the real sets 224 px images and their file layout."""
  c.data = vqa_data()
  c.eval.max_decode_len = c.data.targets_length
  if data != "vqa_tiny":
    c.data.update(dataset="vqav2" if data == "okvqa" else data, annotation_file="")
    if data == "textvqa":
      c.data.update(image_template="{}.jpg", validation_image_template="{}.jpg")
    c.model.image_size = 224


def base_config() -> ml_collections.ConfigDict:
  """Tiny ViT + tiny T5 (random, byte vocabulary) on the synthetic images, 300 steps at the
  paper's multimodal PEFT learning rate, CIDEr-D every 150."""
  return common.training_config(
    model=common.pali_model(
      "tiny", "tiny", image_size=32, init="random", vocab="byte", dtype="float32"
    ),
    method=method_section("adalink", 8),
    data=captioning_data(),
    optimizer=common.optimizer_section(),
    schedule=common.schedule_section(peak_lr=0.03, warmup_steps=20),
    train=common.train_section(num_steps=300, log_every=25, checkpoint_every=150),
    eval=common.eval_section(every_steps=150, batch_size=8, max_decode_len=48),
  )


def method_section(name: str, rank: int) -> ml_collections.ConfigDict:
  """Methods on [image tokens; text tokens]: AdaLink per modality (`unified`: one adapter over
  both), prompts after the image tokens; LoRA and FT as for text."""
  if name in ("adalink", "unified"):
    return common.adalink_method(rank, streams=("image", "text"), unified=name == "unified")
  if name == "pt":
    return common.pt_method(reparam_hidden=64)
  return common.method_section(name, rank)


def get_config(arg: str = "smoke") -> ml_collections.ConfigDict:
  a = common.parse_arg(
    arg,
    config_file="configs/captioning.py",
    variants=VARIANTS,
    options=OPTIONS,
    variants_help=_VARIANTS_HELP,
  )
  c = base_config()
  if a.variant == "smoke":
    c.train.update(num_steps=60, log_every=10, checkpoint_every=60)
    c.eval.every_steps = 0
  else:
    name, rank = a.match.groups()
    if name in ("ft", "pt") and rank:
      a.refuse(f"method {name!r} takes no rank")
    if name in ("lora", "adalink", "unified") and not rank:
      a.refuse(f"{name} needs a rank, e.g. {name}_r16")
    c.method = method_section(name, int(rank) if rank else 0)
    if name == "ft":
      c.schedule.peak_lr = 1e-4
  data = a.get("data", "tiny")
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
    # The paper's splits: COCO on Karpathy test, TextCaps on validation (whose file the
    # captioning family finds beside the train file).
    c.eval.split = "test" if data == "coco" else "validation"
    c.model.image_size = 224
  elif data in VQA_DATASETS:
    use_vqa(c, data)
  if "size" in a:
    c.model.size = a.get("size")
  if "vit" in a:
    c.model.vit_size = a.get("vit")
  return c
