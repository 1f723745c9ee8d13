#!/usr/bin/env python
"""Print a data task's splits, sizes and first examples as the model will see them.

  python scripts/show_task.py                          # every GLUE task in shared/data/glue
  python scripts/show_task.py --task rte --num 5       # one task
  python scripts/show_task.py --task sst2 --data_dir adalink/data/fixtures/testdata/glue_tiny
  python scripts/show_task.py --task mnli --source tfds --tfds_data_dir ~/tensorflow_datasets
  python scripts/show_task.py --captions_json ../shared/data/captions-flickr8k-1k/captions.json

GLUE data comes from --data_dir (the glue_data/ layout; default: shared/data/glue beside the
checkout, or $ADALINK_SHARED/data/glue, else the project's tiny fixture). --vocab picks the byte
vocabulary (default) or SentencePiece (--vocab sentencepiece --vocab_path spiece.model).
"""

from __future__ import annotations

import argparse
import os
import sys

REPO_ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
sys.path.insert(0, REPO_ROOT)


def default_glue_dir() -> str:
  shared = os.environ.get("ADALINK_SHARED") or os.path.join(REPO_ROOT, "..", "shared")
  real = os.path.join(shared, "data", "glue")
  if os.path.isdir(real):
    return os.path.abspath(real)
  return os.path.join(REPO_ROOT, "adalink", "data", "fixtures", "testdata", "glue_tiny")


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  p.add_argument(
    "--task",
    default="all",
    help="a GLUE task (cola, sst2, mrpc, qqp, stsb, mnli, mnli_matched, "
    "mnli_mismatched, qnli, rte) or 'all' (those present in --data_dir)",
  )
  p.add_argument("--source", default="tsv", choices=["tsv", "tfds"])
  p.add_argument("--data_dir", default=None, help="glue_data/ folder (source=tsv)")
  p.add_argument("--tfds_data_dir", default=None)
  p.add_argument(
    "--split",
    default=None,
    help="split to show (default: validation, or MNLI's validation_matched)",
  )
  p.add_argument("--num", type=int, default=5, help="examples to print per task")
  p.add_argument("--vocab", default="byte", choices=["byte", "sentencepiece"])
  p.add_argument("--vocab_path", default=None, help="spiece.model for --vocab sentencepiece")
  p.add_argument("--on_bad_row", default="error", choices=["error", "skip"])
  p.add_argument(
    "--captions_json",
    default=None,
    help="show a generic images+captions task from this JSON instead of GLUE",
  )
  p.add_argument("--image_size", type=int, default=224)
  return p.parse_args(argv)


def _text(value) -> str:
  return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _tokens(ids, limit=12) -> str:
  ids = [int(i) for i in ids]
  shown = " ".join(map(str, ids[:limit]))
  return f"[{shown}{' ...' if len(ids) > limit else ''}] ({len(ids)} tokens)"


def show_glue(args, out) -> None:
  from adalink.data.tasks import glue, glue_source, glue_spec
  from adalink.data.pipeline import vocab

  vocabulary = vocab.get_vocabulary(args.vocab, args.vocab_path)
  data_dir = args.data_dir or (default_glue_dir() if args.source == "tsv" else None)
  if args.task == "all":
    if args.source == "tsv":
      names = [
        n
        for n in glue_spec.GLUE_TASKS
        if glue_source.available_splits(glue_spec.get_spec(n), data_dir)
      ]
    else:
      names = list(glue_spec.GLUE_TASKS)
  else:
    names = [args.task]
  print(
    f"data: source={args.source} data_dir={data_dir} vocab={args.vocab} "
    f"(size {vocabulary.vocab_size})",
    file=out,
  )
  for name in names:
    task = glue.get_glue_task(
      name,
      args.source,
      data_dir,
      vocabulary,
      tfds_data_dir=args.tfds_data_dir,
      on_bad_row=args.on_bad_row,
    )
    spec = glue.get_spec(task)
    sizes = ", ".join(f"{s}={task.num_input_examples(s)}" for s in task.splits)
    print(
      f"\n== {name} (seqio task {task.name}; task_id {spec.task_id}; metrics "
      f"{', '.join(spec.metric_names)})\n   splits: {sizes}",
      file=out,
    )
    split = args.split or ("validation_matched" if name == "mnli" else "validation")
    if split not in task.splits:
      split = task.splits[0]
    ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False)
    for i, ex in enumerate(ds.take(args.num).as_numpy_iterator()):
      print(f"   [{split} #{i}] inputs:  {_text(ex['inputs_pretokenized'])}", file=out)
      label = ex["label"]
      label = f"{float(label):.4g}" if spec.is_regression else int(label)
      print(
        f"   {' ' * (len(split) + 5)}targets: {_text(ex['targets_pretokenized'])}"
        f"   (label {label}, idx {ex['idx']})",
        file=out,
      )
      print(
        f"   {' ' * (len(split) + 5)}input ids {_tokens(ex['inputs'])}, target ids "
        f"{_tokens(ex['targets'])}",
        file=out,
      )


def show_captions(args, out) -> None:
  from adalink.data.tasks import captioning
  from adalink.data.pipeline import vocab

  vocabulary = vocab.get_vocabulary(args.vocab, args.vocab_path)
  task = captioning.get_image_caption_task(
    args.captions_json, vocabulary=vocabulary, image_size=args.image_size
  )
  sizes = ", ".join(f"{s}={task.num_input_examples(s)}" for s in task.splits)
  print(f"== {args.captions_json} (seqio task {task.name})\n   examples: {sizes}", file=out)
  split = args.split or "validation"
  ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False)
  for i, ex in enumerate(ds.take(args.num).as_numpy_iterator()):
    image = ex["image"]
    print(
      f"   [{split} #{i}] {_text(ex['image_id'])}: image {image.shape} {image.dtype} "
      f"in [{image.min():.2f}, {image.max():.2f}]; prompt "
      f"{_text(ex['inputs_pretokenized'])!r}",
      file=out,
    )
    for ref in ex["references"]:
      print(f"      ref: {_text(ref)}", file=out)


def main(argv=None, out=None) -> int:
  args = parse_args(argv)
  out = out or sys.stdout
  if args.captions_json:
    show_captions(args, out)
  else:
    show_glue(args, out)
  return 0


if __name__ == "__main__":
  sys.exit(main())
