"""What a data family is, and the registry of families by `config.data.kind`.

A data family turns the `data` section of a config into a training stream and evaluation sets:

- `num_tasks(config)`: how many task ids its examples use (per-task adapters need that many);
  answered from the config alone, before any data is read;
- `build(config, model)`: validates its fields against the model (`ModelFacts`) and returns a
  `Data` (vocabulary, training source, evaluation sets by name, feature lengths);
- `train_batches(...)`: this process's rows of each global training batch, from any position;
- for `evaluation = "decode"`: `eval_batches(...)` gives, per evaluation set, model batches with
  the examples behind them; the evaluator decodes the batches and scores the examples with the
  set's own `postprocess_fn` and `metric_fns` (seqio Tasks carry both);
- for `evaluation = "loss"`: `loss_batches(...)` gives the batches a teacher-forced loss is
  measured on.

`input_streams` declares what every example carries for the model (`("text",)`, or
`("image", "text")`); the trainer checks it against the model family's, so a captioning family
never meets a text-only model. Registering a family (`FAMILIES.register(name, family)`) is all
it takes for `config.data.kind = name` to work. Nothing here imports TensorFlow; families import
seqio inside their functions.
"""

from __future__ import annotations

import abc
import dataclasses
import itertools
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple, Union

from adalink import config_fields as cf
from adalink.registry import Registry

FAMILIES: Registry["DataFamily"] = Registry("data family", field="data.kind")
EVALUATIONS = ("decode", "loss")
HOST_SPLITS = ("shard", "slice")


@dataclasses.dataclass(frozen=True)
class ModelFacts:
  """What the data needs to know about the model, without importing it."""

  vocab_size: int  # rows of the model's token table: every token id must be below it
  input_streams: Tuple[str, ...] = ("text",)
  image_size: Optional[Union[int, Tuple[int, int]]] = None  # for families with images


@dataclasses.dataclass
class Data:
  """What a family built for one run."""

  kind: str
  family: "DataFamily"
  vocabulary: Any  # a seqio Vocabulary; None when the family holds token ids only
  train: Any  # a seqio Task or Mixture, or the family's own source (e.g. saved batches)
  evals: Dict[str, Any]  # evaluation set name -> seqio Task (decode) or the family's source
  lengths: Dict[str, int]  # {"inputs": L_in, "targets": L_tgt}
  num_tasks: int = 1


class DataFamily(abc.ABC):
  """Base class of the data families; subclasses set the class attributes and the methods."""

  name: str = ""
  input_streams: Tuple[str, ...] = ("text",)
  evaluation: str = "decode"
  examples_to_show: int = 0  # decoded predictions printed per evaluation set (process 0)

  def num_tasks(self, config) -> int:
    """How many task ids the examples use (ids are 0 .. num_tasks - 1)."""
    del config
    return 1

  def counts_in_average(self, set_name: str) -> bool:
    """Whether evaluation set `set_name`'s headline metric counts in `average` (a family may
    report a second view of a task without counting the task twice)."""
    del set_name
    return True

  def task_ids(self, config) -> Dict[str, int]:
    """Task name -> the id its examples carry, for families with several tasks ({} otherwise);
    adapter files record it so a per-task adapter is chosen by name."""
    del config
    return {}

  @abc.abstractmethod
  def build(self, config, model: ModelFacts) -> Data:
    """Validates the config's data fields and returns the run's `Data`."""

  @abc.abstractmethod
  def train_batches(
    self, config, data: Data, start_position: int, process_index: int, process_count: int
  ) -> Iterator[Dict[str, Any]]:
    """This process's rows of global training batch `start_position`, `start_position + 1`, ...,
    repeating over epochs without end."""

  def eval_batches(
    self, config, data: Data, name: str, split: str, batch_size: int
  ) -> Iterator[Tuple[Dict[str, Any], List[Dict[str, Any]]]]:
    """(batch of model features, the examples of its rows) for evaluation set `name`."""
    raise ValueError(
      f"data family {self.name!r} evaluates by {self.evaluation!r}, not by decoding its "
      f"evaluation sets"
    )

  def loss_batches(self, config, data: Data, split: str, batch_size: int) -> Iterator[Dict]:
    """Batches of `split` (global, in order) for a teacher-forced loss evaluation."""
    raise ValueError(
      f"data family {self.name!r} evaluates by {self.evaluation!r}, not by a teacher-forced loss"
    )

  def __repr__(self) -> str:
    return f"<data family {self.name!r}>"


def register(family: DataFamily, *, replace: bool = False) -> DataFamily:
  """Adds `family` under its `name`, checking the attributes the trainer relies on."""
  if family.evaluation not in EVALUATIONS:
    raise ValueError(
      f"data family {family.name!r}: evaluation must be one of {EVALUATIONS}, "
      f"got {family.evaluation!r}"
    )
  if not family.input_streams:
    raise ValueError(f"data family {family.name!r} declares no input_streams")
  return FAMILIES.register(family.name, family, replace=replace)


# ----------------------------------------------------------------------------- shared readers


def lengths(config, targets_may_be_zero: bool = False) -> Dict[str, int]:
  """`data.inputs_length` and `data.targets_length` (0 allowed where a family derives it)."""
  inputs = cf.positive_int(config, "data.inputs_length")
  targets = cf.require(config, "data.targets_length")
  ok = isinstance(targets, int) and (targets > 0 or (targets_may_be_zero and targets == 0))
  if not ok:
    raise ValueError(
      f"config.data.targets_length must be a positive integer"
      f"{' (or 0: derived from the inputs length)' if targets_may_be_zero else ''}, "
      f"got {targets!r}"
    )
  return {"inputs": inputs, "targets": targets}


def vocabulary(config, model: ModelFacts):
  """The seqio vocabulary of `model.vocab` / `model.vocab_path` / `model.vocab_extra_ids`, which
  must fit the model's token table."""
  from adalink.data.pipeline import vocab as vocab_lib

  kind = cf.require(config, "model.vocab")
  path = cf.require(config, "model.vocab_path") or None
  extra_ids = int(cf.require(config, "model.vocab_extra_ids") or 0)
  try:
    vocab = vocab_lib.get_vocabulary(
      kind, cf.resolve_path(path) if path else None, extra_ids=extra_ids
    )
  except ValueError as e:
    raise ValueError(f"config.model.vocab: {e}") from None
  if vocab.vocab_size > model.vocab_size:
    raise ValueError(
      f"config.model.vocab: the {kind} vocabulary has {vocab.vocab_size} ids "
      f"but the model's table has {model.vocab_size} rows"
    )
  return vocab


# ----------------------------------------------------------------------------- seqio families


class SeqioFamily(DataFamily):
  """A family whose training source and evaluation sets are seqio Tasks (or a Mixture)."""

  def train_batches(self, config, data, start_position, process_index, process_count):
    from adalink.data.pipeline import features

    global_batch = cf.positive_int(config, "data.batch_size")
    local = global_batch // process_count
    # 'shard': each process reads its own shard of the examples (the efficient default).
    # 'slice': each process reads the global stream and keeps its rows, so the global batches
    # are the same for any number of processes (reproducibility across topologies).
    sliced = cf.one_of(config, "data.host_split", HOST_SPLITS) == "slice"
    ds = features.make_dataset(
      data.train,
      "train",
      data.lengths,
      global_batch if sliced else local,
      shuffle=True,
      seed=int(cf.require(config, "seed")),
      shard_index=0 if sliced else process_index,
      num_shards=1 if sliced else process_count,
      repeat=True,
      pack=bool(cf.require(config, "data.pack")),
    )
    for batch in ds.skip(start_position).as_numpy_iterator():
      if sliced:
        batch = {
          k: v[process_index * local : (process_index + 1) * local] for k, v in batch.items()
        }
      yield batch

  def eval_batches(self, config, data, name, split, batch_size):
    from adalink.data.pipeline import features

    task = data.evals[name]
    batches = features.make_batches(
      task, split, data.lengths, batch_size, shuffle=False, repeat=False
    )
    # The i-th unshuffled example is the i-th row of the unshuffled batches.
    examples = features.iter_examples(task, split, sequence_length=data.lengths)
    for batch in batches:
      rows = len(next(iter(batch.values())))
      yield batch, list(itertools.islice(examples, rows))

  def loss_batches(self, config, data, split, batch_size):
    from adalink.data.pipeline import features

    for task in data.evals.values():
      yield from features.make_batches(
        task,
        split,
        data.lengths,
        batch_size,
        shuffle=False,
        repeat=False,
        pack=bool(cf.require(config, "data.pack")),
      )


def task_names(config, field: str = "data.tasks") -> Sequence[str]:
  tasks = tuple(cf.require(config, field))
  if not tasks:
    raise ValueError(f"config.{field} is empty")
  return tasks
