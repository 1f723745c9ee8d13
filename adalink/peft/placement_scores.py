"""Scoring adapter placements before training: the gradient rank of every edge of the encoder's
node graph (`adalink.peft.placement_graph`) at initialisation.

At initialisation (W_up = 0) the gradient of the loss with respect to a full d x d linear map M on
edge (i, j) (h_j += h_i M) is G_ij = sum over non-padding tokens of h_i^T g_j, with g_j = dL/dh_j.
One forward and one backward pass give every h_i and g_j: a zero "probe" is added at every node
and the loss is differentiated with respect to the probes. G is accumulated over batches in
float64, then rank(G) = #{singular values > rtol * sigma_max}. `DEFAULT_RTOL` is justified at its
definition. The loss is the caller's (the trainer's token cross-entropy,
`adalink.train.step.cross_entropy`), passed in as `loss_fn`: peft sits below train.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import jax
import jax.numpy as jnp
import numpy as np

from adalink.models import t5
from adalink.peft.placement_graph import Edge, num_nodes

Array = jax.Array

# Relative singular-value tolerance of the gradient rank. G is accumulated from float32 network
# states and gradients, so it carries their rounding: on the tiny 4-layer model (d = 32, 4 batches
# of 32 x 128 byte tokens) G computed in float32 differs from the same G computed in float64 by
# ~3e-7 sigma_max in spectral norm, and that floor grows roughly with sqrt(tokens). Singular values
# below ~1e-6 sigma_max are thus indistinguishable from rounding (numpy's matrix_rank default,
# d * eps_f32 = 3.8e-6 for d = 32, assumes an exactly computed matrix and sits right at this floor).
# 1e-5 keeps a ~30x margin above the measured floor, room for longer accumulations, while counting
# every direction that is not rounding. It is the numerical rank; a study may choose a coarser
# tolerance to count only strong directions (configs/placement.py does, and says why).
DEFAULT_RTOL = 1e-5


def _model_features(batch: Mapping[str, Array]) -> Dict[str, Optional[Array]]:
  get = lambda k: batch[k] if k in batch else None
  return {
    k: get(k)
    for k in (
      "encoder_segment_ids",
      "encoder_positions",
      "decoder_segment_ids",
      "decoder_positions",
    )
  }


# The token loss: (logits, targets, weights) -> (summed weighted loss, weight sum, ...), as
# `adalink.train.step.cross_entropy`; the scored loss is their ratio.
TokenLoss = Callable[[Array, Array, Array], Tuple[Array, ...]]


def node_states_and_grads(
  config: t5.T5Config, params, batch: Mapping[str, Array], loss_fn: TokenLoss
):
  """(h, g, mask): every node's state h [n, b, l, d] and loss gradient g = dL/dh [n, b, l, d] of
  the base model, from one forward and one backward pass, and the encoder mask [b, l].

  A zero probe p_k is added at node k after its value is read; dL/dp_k is dL/dh_k. The loss is
  `loss_fn`'s mean over `decoder_loss_weights` (pass the training loss), without dropout.
  """
  model = t5.T5(config)
  tokens = batch["encoder_input_tokens"]
  mask = tokens != config.pad_token_id
  extra = _model_features(batch)
  n = num_nodes(config.num_encoder_layers)

  def loss(probes):
    states: List[Array] = []

    def hook(k, h):
      states.append(h)
      return h + probes[k].astype(h.dtype)

    def forward(module: t5.T5):
      encoded = module.encode_embedded(
        module.embed(tokens),
        mask,
        extra["encoder_segment_ids"],
        extra["encoder_positions"],
        True,
        node_hook=hook,
      )
      return module.decode(
        encoded,
        mask,
        batch["decoder_input_tokens"],
        batch["decoder_target_tokens"],
        extra["encoder_segment_ids"],
        extra["decoder_segment_ids"],
        extra["decoder_positions"],
        True,
      )

    logits = model.apply({"params": params}, method=forward)
    loss_sum, weight_sum = loss_fn(
      logits, batch["decoder_target_tokens"], batch["decoder_loss_weights"]
    )[:2]
    return loss_sum / jnp.maximum(weight_sum, 1.0), jnp.stack(states)

  probes = jnp.zeros((n,) + tokens.shape + (config.d_model,), config.jnp_dtype)
  grads, states = jax.grad(loss, has_aux=True)(probes)
  return states, grads, mask


def gradient_products(
  config: t5.T5Config, params, batch: Mapping[str, Array], loss_fn: TokenLoss
) -> Array:
  """G [n, n, d, d] for one batch: G[i, j] = sum over non-padding tokens of h_i^T g_j, the
  gradient of a full linear map on edge (i, j) at initialisation, for every (i, j) at once."""
  h, g, mask = node_states_and_grads(config, params, batch, loss_fn)
  h = h.astype(jnp.float32) * mask[None, :, :, None].astype(jnp.float32)
  return jnp.einsum(
    "ibld,jble->ijde", h, g.astype(jnp.float32), precision=jax.lax.Precision.HIGHEST
  )


def ranks_from_products(products: np.ndarray, rtol: float = DEFAULT_RTOL):
  """(ranks, singular values) of every [..., d, d] matrix: #{s > rtol * s_max} (0 if G == 0)."""
  if not 0.0 < rtol < 1.0:
    raise ValueError(f"rtol must be in (0, 1), got {rtol!r}")
  sv = np.linalg.svd(np.asarray(products, np.float64), compute_uv=False)
  top = sv[..., :1]
  ranks = np.sum((sv > rtol * top) & (top > 0), axis=-1)
  return ranks.astype(np.int64), sv


@dataclasses.dataclass
class EdgeScores:
  """Gradient-rank scores. `ranks[i, j]` is edge (i, j)'s rank (-1 where not scored)."""

  ranks: np.ndarray
  singular_values: np.ndarray  # [n, n, d], descending, float64
  products: np.ndarray  # [n, n, d, d] accumulated G, float64
  rtol: float
  num_batches: int
  num_tokens: int

  def rank(self, edge: Edge) -> int:
    return int(self.ranks[edge.src, edge.dst])


def score_edges(
  config: t5.T5Config,
  params,
  batches: Iterable[Mapping[str, Array]],
  num_batches: int,
  rtol: float = DEFAULT_RTOL,
  edges: Optional[Sequence[Edge]] = None,
  *,
  loss_fn: TokenLoss,
) -> EdgeScores:
  """Gradient rank of every edge (or of `edges`) over `num_batches` batches, G accumulated in
  float64 before one SVD per edge. One jitted forward+backward per batch serves all edges.
  `loss_fn` is the token loss (`adalink.train.step.cross_entropy` for the training loss)."""
  if not isinstance(num_batches, int) or num_batches <= 0:
    raise ValueError(f"num_batches must be a positive integer, got {num_batches!r}")
  if not callable(loss_fn):
    raise ValueError(f"loss_fn must be a token loss function, got {loss_fn!r}")
  step = jax.jit(lambda p, b: gradient_products(config, p, b, loss_fn))
  total, count, tokens = None, 0, 0
  for batch in batches:
    if count == num_batches:
      break
    batch = {
      k: jnp.asarray(v)
      for k, v in batch.items()
      if k
      in (
        "encoder_input_tokens",
        "decoder_input_tokens",
        "decoder_target_tokens",
        "decoder_loss_weights",
        "encoder_segment_ids",
        "encoder_positions",
        "decoder_segment_ids",
        "decoder_positions",
      )
    }
    g = np.asarray(step(params, batch), np.float64)
    total = g if total is None else total + g
    tokens += int(np.sum(np.asarray(batch["encoder_input_tokens"]) != config.pad_token_id))
    count += 1
  if count < num_batches:
    raise ValueError(f"score_edges asked for {num_batches} batches, the data gave {count}")
  ranks, sv = ranks_from_products(total, rtol)
  if edges is not None:
    keep = np.zeros(ranks.shape, bool)
    for e in edges:
      keep[e.src, e.dst] = True
    ranks = np.where(keep, ranks, -1)
  return EdgeScores(ranks, sv, total, rtol, count, tokens)
