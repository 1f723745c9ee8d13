"""Training and evaluating adapter placements for the placement study, all on the same batches.

Every placement trains through the `placement` method (`method.edges`) with the trainer's step
(`adalink.train.step`) and optimizer (`adalink.train.optim`). Placements of the same shape (number
of edges, and whether a recurrent edge needs a second pass) share one compiled train step and one
compiled evaluation: the edges reach the model as a `placement_routing` array, not as constants of
the trace.
"""

from __future__ import annotations

import json
import time
from typing import Any, Dict, Optional

import jax
import jax.numpy as jnp
import numpy as np

from adalink.experiments.placement_setup import StudyData
from adalink.models import t5
from adalink.peft import methods
from adalink.peft import placement as pl
from adalink.peft import placement_graph as graph
from adalink.train import optim
from adalink.train import step as step_lib


def make_eval_fn(model):
  """Sums over one validation batch: label-token loss, weights, token hits, exact matches, and
  rank-classification hits (the label word with the highest log-likelihood)."""

  def evaluate(trainable, frozen, batch, cand_in, cand_tgt):
    variables = methods.merge_variables(trainable, frozen)
    tokens = batch["encoder_input_tokens"]
    encoded, mask = model.apply(variables, tokens, method="encode_for_decoder")

    def token_logp(dec_in, dec_tgt):
      logits = model.apply(variables, encoded, mask, dec_in, dec_tgt, method="decode").astype(
        jnp.float32
      )
      logp = jax.nn.log_softmax(logits)
      return jnp.take_along_axis(logp, dec_tgt[..., None], -1)[..., 0], logits

    valid = batch["valid"]
    tgt, w = batch["decoder_target_tokens"], batch["decoder_loss_weights"]
    lp, logits = token_logp(batch["decoder_input_tokens"], tgt)
    hit = jnp.argmax(logits, -1) == tgt
    exact = jnp.all(hit | (w == 0), axis=1) & valid
    scores = []
    for c in range(cand_tgt.shape[0]):
      shape = tokens.shape[:1] + cand_tgt.shape[1:]
      c_tgt = jnp.broadcast_to(cand_tgt[c], shape)
      c_lp, _ = token_logp(jnp.broadcast_to(cand_in[c], shape), c_tgt)
      scores.append(jnp.sum(c_lp * (c_tgt > 0), axis=1))
    pred = jnp.argmax(jnp.stack(scores, 1), axis=1)
    return {
      "loss_sum": -jnp.sum(lp * w),
      "weight_sum": jnp.sum(w),
      "correct": jnp.sum(hit * w),
      "exact": jnp.sum(exact),
      "class_correct": jnp.sum((pred == batch["label"]) & valid),
      "rows": jnp.sum(valid),
    }

  return evaluate


def check_finite_losses(losses: np.ndarray) -> None:
  """A placement whose training diverged has no meaningful metric: stop the study there."""
  finite = np.isfinite(losses)
  if not np.all(finite):
    bad = int(np.argmin(finite)) + 1
    raise FloatingPointError(
      f"non-finite training loss at step {bad}: lower config.schedule.peak_lr"
    )


class Runner:
  """Trains and evaluates adapter sets; compiles once per (method, edge-set shape)."""

  def __init__(self, c, cfg: t5.T5Config, base_params, data: StudyData):
    self.c, self.cfg, self.base_params = c, cfg, base_params
    self.train = [{k: jnp.asarray(v) for k, v in b.items()} for b in data.train]
    self.val = [{k: jnp.asarray(v) for k, v in b.items()} for b in data.val]
    self.cand_in, self.cand_tgt = (jnp.asarray(x) for x in data.candidates)
    self._compiled: Dict[Any, Dict[str, Any]] = {}
    self.compiles = 0

  def _entry(self, key, method_cfg):
    if key not in self._compiled:
      spec = methods.spec_from_config(
        method_cfg, self.cfg.d_model, num_encoder_layers=self.cfg.num_encoder_layers
      )
      model = methods.build_model(self.cfg, spec)
      variables = methods.init_variables(
        model, jax.random.PRNGKey(int(self.c.seed) + 1), self.base_params
      )
      trainable, frozen = methods.split_variables(spec, variables)
      tx, _ = optim.make_optimizer(self.c.optimizer, self.c.schedule)
      self._compiled[key] = dict(
        spec=spec,
        model=model,
        trainable=trainable,
        frozen=frozen,
        tx=tx,
        step=jax.jit(step_lib.make_train_step(model, tx)),
        evaluate=jax.jit(make_eval_fn(model)),
      )
      self.compiles += 1
    return self._compiled[key]

  def run_edges(self, edges, routed: bool = True, init_seed: Optional[int] = None):
    """Trains one edge set -> (metrics, the edges in canonical order). `routed`: through the
    compiled step of its shape (sets of one shape share it); otherwise a model of its own (worth
    it for a set trained once). `init_seed`: adapter init other than the shared one (for the
    seed-to-seed noise estimate)."""
    edges = graph.canonical_order(edges)
    method = {**self.c.method.to_dict(), "edges": [list(e) for e in edges]}
    if not routed:
      return self.run_method(method), edges
    entry = self._entry(("placement",) + graph.edge_set_shape(edges), method)
    frozen = pl.routed_variables(entry["frozen"], entry["spec"].edges, edges)
    return self._run(entry, frozen, init_seed), edges

  def run_method(self, method_cfg) -> Dict[str, Any]:
    key = json.dumps(method_cfg, sort_keys=True, default=str)
    entry = self._entry(key, method_cfg)
    return self._run(entry, entry["frozen"])

  def _run(self, entry, frozen, init_seed: Optional[int] = None) -> Dict[str, Any]:
    t0 = time.time()
    trainable = entry["trainable"]
    if init_seed is not None:
      fresh = methods.init_variables(
        entry["model"], jax.random.PRNGKey(init_seed), self.base_params
      )
      trainable = methods.split_variables(entry["spec"], fresh)[0]
    opt_state = entry["tx"].init(trainable)
    rng = jax.random.PRNGKey(int(self.c.seed) + 2)
    losses = []
    for i in range(int(self.c.train.num_steps)):
      trainable, opt_state, m = entry["step"](
        trainable, opt_state, frozen, self.train[i], jax.random.fold_in(rng, i)
      )
      losses.append(m["loss"])
    losses = np.asarray(jax.device_get(losses), np.float64)
    check_finite_losses(losses)
    sums = None
    for b in self.val:
      out = jax.device_get(entry["evaluate"](trainable, frozen, b, self.cand_in, self.cand_tgt))
      sums = out if sums is None else {k: sums[k] + out[k] for k in sums}
    rows = float(sums["rows"])
    tail = max(1, len(losses) // 10)
    return {
      "val_loss": float(sums["loss_sum"] / sums["weight_sum"]),
      "token_acc": float(sums["correct"] / sums["weight_sum"]),
      "exact_match": float(sums["exact"] / rows),
      "class_acc": float(sums["class_correct"] / rows),
      "train_loss_first": float(losses[0]),
      "train_loss_last": float(losses[-tail:].mean()),
      "params": methods.count_params(trainable),
      "seconds": round(time.time() - t0, 2),
    }
