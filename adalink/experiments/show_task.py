"""A data task's splits, sizes and first examples as the model will see them (text and ids).

GLUE data comes from a glue_data/-layout folder (default: `$ADALINK_SHARED/data/glue`, else
shared/data/glue beside the checkout, else the package's tiny fixture) or from TFDS; a generic
images+captions task from its annotation JSON.
"""

from __future__ import annotations

import os
from typing import Optional, TextIO

from adalink.data import fixtures

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def default_glue_dir() -> str:
  shared = os.environ.get("ADALINK_SHARED") or os.path.join(_REPO_ROOT, "..", "shared")
  real = os.path.join(shared, "data", "glue")
  if os.path.isdir(real):
    return os.path.abspath(real)
  return os.path.join(fixtures.TESTDATA, "glue_tiny")


def _text(value) -> str:
  return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _tokens(ids, limit=12) -> str:
  ids = [int(i) for i in ids]
  shown = " ".join(map(str, ids[:limit]))
  return f"[{shown}{' ...' if len(ids) > limit else ''}] ({len(ids)} tokens)"


def show_glue(
  out: TextIO,
  task: str = "all",
  source: str = "tsv",
  data_dir: Optional[str] = None,
  tfds_data_dir: Optional[str] = None,
  split: Optional[str] = None,
  num: int = 5,
  vocab: str = "byte",
  vocab_path: Optional[str] = None,
  on_bad_row: str = "error",
) -> None:
  """Writes each GLUE task's splits and first `num` examples of `split` (default: validation,
  or MNLI's validation_matched) to `out`; `task='all'`: every task `data_dir` has."""
  from adalink.data.pipeline import vocab as vocab_lib
  from adalink.data.tasks import glue, glue_source, glue_spec

  vocabulary = vocab_lib.get_vocabulary(vocab, vocab_path)
  data_dir = data_dir or (default_glue_dir() if source == "tsv" else None)
  if task == "all":
    if source == "tsv":
      names = [
        n
        for n in glue_spec.GLUE_TASKS
        if glue_source.available_splits(glue_spec.get_spec(n), data_dir)
      ]
    else:
      names = list(glue_spec.GLUE_TASKS)
  else:
    names = [task]
  print(
    f"data: source={source} data_dir={data_dir} vocab={vocab} (size {vocabulary.vocab_size})",
    file=out,
  )
  for name in names:
    seqio_task = glue.get_glue_task(
      name, source, data_dir, vocabulary, tfds_data_dir=tfds_data_dir, on_bad_row=on_bad_row
    )
    spec = glue.get_spec(seqio_task)
    sizes = ", ".join(f"{s}={seqio_task.num_input_examples(s)}" for s in seqio_task.splits)
    print(
      f"\n== {name} (seqio task {seqio_task.name}; task_id {spec.task_id}; metrics "
      f"{', '.join(spec.metric_names)})\n   splits: {sizes}",
      file=out,
    )
    shown = split or ("validation_matched" if name == "mnli" else "validation")
    if shown not in seqio_task.splits:
      shown = seqio_task.splits[0]
    ds = seqio_task.get_dataset(None, split=shown, shuffle=False, try_in_mem_cache=False)
    pad = " " * (len(shown) + 5)
    for i, ex in enumerate(ds.take(num).as_numpy_iterator()):
      print(f"   [{shown} #{i}] inputs:  {_text(ex['inputs_pretokenized'])}", file=out)
      label = ex["label"]
      label = f"{float(label):.4g}" if spec.is_regression else int(label)
      print(
        f"   {pad}targets: {_text(ex['targets_pretokenized'])}   (label {label}, idx {ex['idx']})",
        file=out,
      )
      print(
        f"   {pad}input ids {_tokens(ex['inputs'])}, target ids {_tokens(ex['targets'])}",
        file=out,
      )


def show_captions(
  out: TextIO,
  captions_json: str,
  split: Optional[str] = None,
  num: int = 5,
  vocab: str = "byte",
  vocab_path: Optional[str] = None,
  image_size: int = 224,
) -> None:
  """Writes a generic images+captions task's sizes and first `num` examples to `out`."""
  from adalink.data.pipeline import vocab as vocab_lib
  from adalink.data.tasks import captioning

  vocabulary = vocab_lib.get_vocabulary(vocab, vocab_path)
  task = captioning.get_image_caption_task(
    captions_json, vocabulary=vocabulary, image_size=image_size
  )
  sizes = ", ".join(f"{s}={task.num_input_examples(s)}" for s in task.splits)
  print(f"== {captions_json} (seqio task {task.name})\n   examples: {sizes}", file=out)
  split = split or "validation"
  ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False)
  for i, ex in enumerate(ds.take(num).as_numpy_iterator()):
    image = ex["image"]
    print(
      f"   [{split} #{i}] {_text(ex['image_id'])}: image {image.shape} {image.dtype} "
      f"in [{image.min():.2f}, {image.max():.2f}]; prompt "
      f"{_text(ex['inputs_pretokenized'])!r}",
      file=out,
    )
    for ref in ex["references"]:
      print(f"      ref: {_text(ref)}", file=out)
