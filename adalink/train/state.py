"""The model state of a run: the frozen base, the trainable variables and the optimiser state,
placed on the device mesh; the jitted train step; restoring a run's checkpoint.

Parameters carry logical axis names; `partitioning` maps them onto the mesh, and the optimiser
state follows the shardings of the parameters it belongs to.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, Optional

import jax
import flax.linen as nn

from adalink import config_fields as cf
from adalink.peft import methods
from adalink.train import checkpoints as ckpt_lib
from adalink.train import optim, partitioning
from adalink.train import plan as plan_lib
from adalink.train import step as step_lib


def load_base(p: plan_lib.Plan) -> Dict[str, Any]:
  """The frozen base: from its original checkpoint(s), or from `model.init_seed` when random."""
  return p.model_family.load_base(p.config, p.model_config, p.checkpoints)


def shard_variables(variables, boxed_abstract, mesh):
  """`variables` placed by their logical axes; -> (variables, their shardings)."""
  shardings = partitioning.logical_shardings(boxed_abstract, mesh)
  shardings = {c: shardings[c] for c in variables}
  return jax.device_put(variables, shardings), shardings


def abstract_like(tree):
  """Shapes, dtypes and shardings of `tree`'s arrays (a restore target)."""
  return jax.tree_util.tree_map(
    lambda x: jax.ShapeDtypeStruct(x.shape, x.dtype, sharding=x.sharding), tree
  )


@dataclasses.dataclass
class TrainState:
  """What training reads and changes. `trainable` and `opt_state` are replaced every step."""

  model: Any
  spec: methods.MethodSpec
  boxed: Any  # abstract variables with their logical axes
  trainable: Any
  frozen: Any
  opt_state: Any
  schedule: Callable[[int], float]
  train_step: Callable  # (trainable, opt_state, frozen, batch, rng) -> (trainable, opt_state, m)

  def checkpoint(self) -> Dict[str, Any]:
    return {"trainable": self.trainable, "opt_state": self.opt_state}

  def variables(self) -> Dict[str, Any]:
    return methods.merge_variables(self.trainable, self.frozen)

  def param_counts(self) -> Dict[str, int]:
    counts = methods.count_trainable(self.spec, self.boxed)
    return {
      "trainable_params": counts["trainable"],
      "total_params": methods.count_params(nn.unbox(self.boxed)["params"]),
    }


def _optimizer(config):
  return optim.make_optimizer(cf.require(config, "optimizer"), cf.require(config, "schedule"))


def init_state(p: plan_lib.Plan, base_params, rng) -> TrainState:
  """Adapters initialised around the base, everything sharded, the optimiser state created, and
  the train step compiled for these shardings."""
  model = p.model
  variables = methods.init_variables(model, jax.random.fold_in(rng, 1), base_params)
  boxed = methods.abstract_variables(model)
  variables, var_shardings = shard_variables(variables, boxed, p.mesh)
  trainable, frozen = methods.split_variables(p.spec, variables)
  train_sh, frozen_sh = methods.split_variables(p.spec, var_shardings)
  tx, schedule = _optimizer(p.config)
  opt_sh = partitioning.optimizer_state_shardings(
    jax.eval_shape(tx.init, trainable), train_sh, p.mesh
  )
  opt_state = jax.jit(tx.init, out_shardings=opt_sh)(trainable)
  repl = partitioning.replicated(p.mesh)
  step_fn = step_lib.make_train_step(
    model, tx, float(cf.require(p.config, "train.label_smoothing"))
  )
  train_step = jax.jit(
    step_fn,
    in_shardings=(train_sh, opt_sh, frozen_sh, partitioning.batch_sharding(p.mesh), repl),
    out_shardings=(train_sh, opt_sh, repl),
    donate_argnums=(0, 1),
  )
  return TrainState(model, p.spec, boxed, trainable, frozen, opt_state, schedule, train_step)


def run_checkpoints(config, workdir: str) -> ckpt_lib.RunCheckpoints:
  """The run directory's checkpoint store: the last `train.keep_checkpoints` steps, and the best
  step by `eval.best_metric` (none when it is empty)."""
  return ckpt_lib.RunCheckpoints(
    workdir,
    keep=cf.positive_int(config, "train.keep_checkpoints"),
    best_metric=cf.require(config, "eval.best_metric") or None,
    best_mode=cf.one_of(config, "eval.best_mode", ("max", "min")),
  )


def restore_latest(state: TrainState, store: ckpt_lib.RunCheckpoints) -> Optional[Dict[str, Any]]:
  """Loads the store's latest step into `state`; -> its metadata, or None for a new run."""
  if store.latest_step() is None:
    return None
  restored, meta = store.restore(
    {"trainable": abstract_like(state.trainable), "opt_state": abstract_like(state.opt_state)}
  )
  state.trainable, state.opt_state = restored["trainable"], restored["opt_state"]
  return meta


def restore_for_eval(
  config, workdir: str, which: str = "latest", step: Optional[int] = None, with_data: bool = True
):
  """(model, variables, data, plan, step) of a run's checkpoint, ready for `evaluate`; with
  `with_data=False` the data is not rebuilt (data is None), e.g. to export on another machine."""
  from adalink.train import inputs

  p = plan_lib.plan(config)
  data = inputs.build_data(config, p.model_config) if with_data else None
  model = p.model
  variables = methods.init_variables(model, jax.random.PRNGKey(0), load_base(p))
  boxed = methods.abstract_variables(model)
  variables, _ = shard_variables(variables, boxed, p.mesh)
  trainable, frozen = methods.split_variables(p.spec, variables)
  tx, _ = _optimizer(config)
  train_sh = jax.tree_util.tree_map(lambda x: x.sharding, trainable)
  opt_abstract = jax.eval_shape(tx.init, trainable)
  opt_sh = partitioning.optimizer_state_shardings(opt_abstract, train_sh, p.mesh)
  opt_abstract = jax.tree_util.tree_map(
    lambda a, s: jax.ShapeDtypeStruct(a.shape, a.dtype, sharding=s), opt_abstract, opt_sh
  )
  store = run_checkpoints(config, workdir)
  try:
    restored, meta = store.restore(
      {"trainable": abstract_like(trainable), "opt_state": opt_abstract}, step=step, which=which
    )
  finally:
    store.close()  # also when the restore is refused: no writer threads left behind
  return model, methods.merge_variables(restored["trainable"], frozen), data, p, int(meta["step"])
