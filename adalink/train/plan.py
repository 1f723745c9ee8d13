"""Everything a run needs that can be checked before any data is read or any file is written.

`plan(config)` resolves the model family (`model.kind`) and the data family (`data.kind`), builds
the model config and the method spec, checks the two families fit each other, the base-weight
paths, the device mesh and batch divisibility, and returns a `Plan`. The order is the order a
user would want to hear about problems in; `train_and_evaluate` touches the work dir only after
all of it passed.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, Optional

from adalink import config_fields as cf
from adalink.data import families as data_families
from adalink.peft import methods
from adalink.train import model_families, partitioning

INITS = ("checkpoint", "random")


def model_family(config) -> model_families.ModelFamily:
  return model_families.FAMILIES.get(cf.require(config, "model.kind"))


def data_family(config) -> data_families.DataFamily:
  return data_families.FAMILIES.get(cf.require(config, "data.kind"))


def model_config(config):
  """The model config of `config.model` (built and validated by its model family)."""
  return model_family(config).make_config(config)


def text_config(config, model_cfg):
  """The text part of `model_cfg` (itself for a text-only model)."""
  return model_family(config).text_config(model_cfg)


def method_spec(config, model_cfg) -> methods.MethodSpec:
  """`config.method` validated against the model (width, input streams) and the data (how many
  task ids its examples use, for per-task adapters)."""
  return methods.spec_from_config(
    cf.require(config, "method"),
    text_config(config, model_cfg).d_model,
    available_streams=model_family(config).input_streams,
    num_tasks=data_family(config).num_tasks(config),
  )


def build_model(model_cfg, spec: methods.MethodSpec, config=None):
  """The PEFT-wrapped model: by `config`'s model family when given, else by the wrapper the
  method layer registered for `model_cfg`'s type."""
  if config is not None:
    return model_family(config).build_model(model_cfg, spec)
  from adalink.peft import multimodal  # noqa: F401  (registers the image+text wrapper)

  return methods.build_model(model_cfg, spec)


def check_families_fit(config) -> None:
  """The data family's examples carry exactly the streams the model reads."""
  model, data = model_family(config), data_family(config)
  if tuple(model.input_streams) != tuple(data.input_streams):
    raise ValueError(
      f"config.data.kind={data.name!r} gives examples with {tuple(data.input_streams)}, but "
      f"config.model.kind={model.name!r} reads {tuple(model.input_streams)}; choose a model "
      f"family that reads what the data gives"
    )


def _checkpoints(config, family: model_families.ModelFamily) -> Dict[str, Optional[str]]:
  """Resolved base-weight paths by config field (None: random init)."""
  init = cf.one_of(config, "model.init", INITS)
  paths: Dict[str, Optional[str]] = {"model.checkpoint": None}
  if init == "checkpoint":
    if not cf.require(config, "model.checkpoint"):
      raise ValueError(
        "config.model.checkpoint is empty: this variant fine-tunes a pretrained "
        "model; pass --config.model.checkpoint=DIR (a Hugging Face T5 directory "
        "or a T5X checkpoint), or --config.model.init=random for a random base"
      )
    paths["model.checkpoint"] = cf.existing_path(config, "model.checkpoint")
  for field in family.extra_checkpoints:
    paths[field] = cf.existing_path(config, field) if cf.require(config, field) else None
  return paths


@dataclasses.dataclass
class Plan:
  """Everything `train_and_evaluate` needs, built and validated before any side effect."""

  config: Any
  model_config: Any
  spec: methods.MethodSpec
  mesh: Any
  checkpoints: Dict[str, Optional[str]]  # config field -> resolved path, or None (random)
  model_family: model_families.ModelFamily
  data_family: data_families.DataFamily
  model: Any  # the PEFT-wrapped Flax module

  @property
  def checkpoint(self) -> Optional[str]:
    """The base model's checkpoint (None for a random base)."""
    return self.checkpoints.get("model.checkpoint")

  @property
  def text_config(self):
    """The text part of the model config (the config itself for a text-only model)."""
    return self.model_family.text_config(self.model_config)


def plan(config) -> Plan:
  """All static checks, in the order a user would want to hear about them."""
  family = model_family(config)
  data_fam = data_family(config)
  cfg = family.make_config(config)
  spec = method_spec(config, cfg)
  model = family.build_model(cfg, spec)  # refuses a method this model cannot run
  check_families_fit(config)
  checkpoints = _checkpoints(config, family)
  mesh = partitioning.make_mesh(tuple(cf.require(config, "sharding.mesh")))
  batch = cf.positive_int(config, "data.batch_size")
  partitioning.check_batch_divisible(batch, mesh, "config.data.batch_size")
  partitioning.check_batch_divisible(
    cf.positive_int(config, "eval.batch_size"), mesh, "config.eval.batch_size"
  )
  for field in ("train.num_steps", "train.checkpoint_every", "train.log_every"):
    cf.positive_int(config, field)
  cf.one_of(config, "data.host_split", data_families.base.HOST_SPLITS)
  return Plan(config, cfg, spec, mesh, checkpoints, family, data_fam, model)


def maybe_initialize_distributed(config):
  """Multi-host: `jax.distributed.initialize` when the config or the environment asks for it."""
  import jax

  want = cf.one_of(config, "sharding.distributed", (True, False, "auto"))
  env = any(k in os.environ for k in ("JAX_COORDINATOR_ADDRESS", "ADALINK_COORDINATOR"))
  if want is True or (want == "auto" and env):
    if jax.distributed.is_initialized():
      return
    addr = os.environ.get("ADALINK_COORDINATOR") or os.environ.get("JAX_COORDINATOR_ADDRESS")
    kwargs = {}
    if addr:
      kwargs = dict(
        coordinator_address=addr,
        num_processes=int(os.environ["ADALINK_NUM_PROCESSES"]),
        process_id=int(os.environ["ADALINK_PROCESS_ID"]),
      )
    jax.distributed.initialize(**kwargs)
