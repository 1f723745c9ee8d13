"""The run's data, through its data family: building it, and this process's training batches.

The family (`config.data.kind`) does the reading; this module tells it what the model is
(`ModelFacts`, from the model family) and keeps only the features the train step takes.
"""

from __future__ import annotations

from typing import Dict, Iterator

import jax
import numpy as np

from adalink.data import families as data_families
from adalink.train import plan as plan_lib
from adalink.train import step as step_lib

Data = data_families.Data
# What a batch keeps on its way to the device: the model's inputs and the loss weights.
BATCH_FEATURES = tuple(step_lib.MODEL_FEATURES) + ("decoder_loss_weights",)


def model_facts(config, model_cfg) -> data_families.ModelFacts:
  """What the data family needs to know about `config`'s model."""
  family = plan_lib.model_family(config)
  return data_families.ModelFacts(
    vocab_size=int(family.text_config(model_cfg).vocab_size),
    input_streams=tuple(family.input_streams),
    image_size=family.image_size(model_cfg),
  )


def build_data(config, model_cfg) -> Data:
  """The training source and evaluation sets of `config.data`, checked against the model."""
  plan_lib.check_families_fit(config)
  family = plan_lib.data_family(config)
  data = family.build(config, model_facts(config, model_cfg))
  want = family.num_tasks(config)
  if data.num_tasks != want:
    raise ValueError(
      f"data family {family.name!r} built data with {data.num_tasks} task ids, but said "
      f"{want} when the method was planned"
    )
  return data


def batch_features(batch) -> Dict[str, np.ndarray]:
  return {k: v for k, v in batch.items() if k in BATCH_FEATURES}


def train_batches(config, data: Data, start_position: int) -> Iterator[Dict[str, np.ndarray]]:
  """This process's part of each global batch, starting after `start_position` batches."""
  stream = data.family.train_batches(
    config, data, start_position, jax.process_index(), jax.process_count()
  )
  for batch in stream:
    yield batch_features(batch)


def peek_first(batches: Iterator[Dict[str, np.ndarray]]) -> Iterator[Dict[str, np.ndarray]]:
  """Reads the first batch now (so reading errors surface here) and yields the same stream."""
  first = next(batches)

  def stream():
    yield first
    yield from batches

  return stream()


def pad_rows(x: np.ndarray, rows: int) -> np.ndarray:
  """`x` with zero rows appended up to `rows` (a short last batch at the compiled size)."""
  return np.concatenate([x, np.zeros((rows - len(x),) + x.shape[1:], x.dtype)])
