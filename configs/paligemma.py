# pylint: disable=line-too-long
r"""Captioning and VQA on PaliGemma (SigLIP + Gemma): FT, LoRA, PT and AdaLink per modality.

PaliGemma is the public member of the PaLI family the paper's multimodal rows (Tables 1-4) use:
the prompt (e.g. `caption en`) and the image tokens form the prefix, the caption the answer.

Download-free smoke run (tiny random PaliGemma on the package's 12 synthetic captioned images):
  python scripts/train.py --config=configs/paligemma.py:smoke --workdir=/tmp/pg_smoke

The shared Flickr8k photos, a small random PaliGemma (tiny SigLIP at 64 px, Gemma 'mini'), any method:
  python scripts/train.py --config=configs/paligemma.py:adalink_r64,data=flickr8k --workdir=/tmp/pg_f8k

A paper row on a downloaded PaliGemma-3B (224 px) and COCO:
  python scripts/train.py --config=configs/paligemma.py:adalink_r64,data=coco,base=paligemma_3b \
      --workdir=/tmp/pg_coco --config.model.checkpoint=/ckpt/paligemma-3b-pt-224 \
      --config.model.vocab_path=/ckpt/paligemma-3b-pt-224/tokenizer.model \
      --config.data.annotation_file=/data/coco/captions_karpathy.json --config.data.image_dir=/data/coco

VQA (the prompt `answer en <question>`, VQA accuracy against every human answer):
  python scripts/train.py --config=configs/paligemma.py:adalink_r64,data=vqa_tiny --workdir=/tmp/pg_vqa

Variants: smoke, ft, pt (64 prompt tokens after the image tokens), lora_rN, adalink_rN (one adapter
per modality; the paper's r=64 row and the Table 2 sweep r=4..256), unified_rN (one adapter over
both modalities, the paper's r=128 row). Options: `,data=tiny|flickr8k|coco|textcaps` (captioning),
`data=vqa_tiny|vqav2|okvqa|textvqa|stvqa|docvqa` (VQA; the real sets need their files:
--config.data.annotation_file / image_dir and the validation_ ones),
`,base=tiny|paligemma_3b|paligemma2_3b` (the last two need `model.checkpoint`). PEFT uses LR 0.03
and FT 1e-4, the paper's multimodal settings.
"""

import re

from configs import captioning, common

VARIANTS = ("smoke", re.compile(r"(ft|pt|lora|adalink|unified)(?:_r(\d+))?"))
BASES = {
  # (Gemma size, ViT size, image size, vocabulary size)
  "tiny": ("tiny", "tiny", 32, 512),
  "paligemma_3b": ("gemma_2b", "So400m/14", 224, 257216),
  "paligemma2_3b": ("gemma2_2b", "So400m/14", 224, 257216),
}
VQA_DATASETS = captioning.VQA_DATASETS
OPTIONS = {
  "data": common.one_of(*captioning.DATASETS, *VQA_DATASETS),
  "base": common.one_of(*BASES),
}
_VARIANTS_HELP = "smoke, ft, pt, lora_rN, adalink_rN, unified_rN"


def paligemma_model(base: str = "tiny", **overrides):
  size, vit_size, image_size, vocab_size = BASES[base]
  random = base == "tiny"
  return common.section(
    **{
      "kind": "paligemma",
      "size": size,
      "vit_size": vit_size,
      "image_size": image_size,
      "vocab_size": vocab_size,
      "init": "random" if random else "checkpoint",
      "init_seed": 0,
      "checkpoint": "",  # Hugging Face PaliGemma directory
      "vocab": "byte" if random else "sentencepiece",
      "vocab_path": "",  # the checkpoint's tokenizer.model
      "vocab_extra_ids": 0,
      "dtype": "float32" if random else "bfloat16",
      **overrides,
    }
  )


def get_config(arg: str = "smoke"):
  a = common.parse_arg(
    arg,
    config_file="configs/paligemma.py",
    variants=VARIANTS,
    options=OPTIONS,
    variants_help=_VARIANTS_HELP,
  )
  c = captioning.base_config()
  c.model = paligemma_model(a.get("base", "tiny"))
  if a.variant == "smoke":
    c.train.update(num_steps=60, log_every=10, checkpoint_every=60)
    c.eval.every_steps = 0
  else:
    name, rank = a.match.groups()
    if name in ("ft", "pt") and rank:
      a.refuse(f"method {name!r} takes no rank")
    if name in ("lora", "adalink", "unified") and not rank:
      a.refuse(f"{name} needs a rank, e.g. {name}_r16")
    c.method = captioning.method_section(name, int(rank) if rank else 0)
    if name == "ft":
      c.schedule.peak_lr = 1e-4
  data = a.get("data", "tiny")
  if data == "flickr8k":
    flickr = captioning.get_config("adalink_r4,data=flickr8k").data
    c.data.annotation_file = flickr.annotation_file
    c.data.validation_fraction = flickr.validation_fraction
    if a.get("base", "tiny") == "tiny":
      c.model.image_size = 64
      c.model.size = "mini"  # a Gemma wide enough for the paper's ranks
  elif data in ("coco", "textcaps"):
    c.data.dataset = "coco_karpathy" if data == "coco" else "textcaps"
    c.data.annotation_file = ""
    # The paper's splits: COCO on Karpathy test, TextCaps on validation (whose file the
    # captioning family finds beside the train file).
    c.eval.split = "test" if data == "coco" else "validation"
    c.model.image_size = 224
  elif data in VQA_DATASETS:
    captioning.use_vqa(c, data)
  return c
