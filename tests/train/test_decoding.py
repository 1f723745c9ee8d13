"""Decoding against references that do not use the KV cache or the beam machinery."""

import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from adalink.models import t5
from adalink.train import decoding

VOCAB, EOS = 8, 1


@pytest.fixture(scope="module")
def tiny():
  cfg = t5.get_config("tiny", dropout_rate=0.0, vocab_size=VOCAB)
  params = t5.init_params(cfg, jax.random.PRNGKey(3))
  # EOS made to compete with token 7 (a slightly louder copy of its output column), so some
  # rows stop early and others run to the length limit: both paths of the decoder get tested.
  kernel = params["decoder"]["logits_dense"]["kernel"]
  params["decoder"]["logits_dense"]["kernel"] = kernel.at[:, EOS].set(kernel[:, 7] * 1.05)
  enc = np.random.RandomState(0).randint(2, VOCAB, (4, 6)).astype(np.int32)
  enc[1, 3:] = 0
  enc[3, 2:] = 0
  return t5.T5(cfg), params, jnp.asarray(enc)


def _sequence_logprobs(model, params, enc_row, targets, lengths):
  """Total log-prob of each target row (first `lengths[j]` tokens), by full forward passes."""
  n = targets.shape[0]
  dec_in = np.concatenate([np.zeros((n, 1), np.int32), targets[:, :-1]], axis=1)
  logits = model.apply({"params": params}, jnp.repeat(enc_row[None], n, 0), jnp.asarray(dec_in))
  lp = np.take_along_axis(np.asarray(jax.nn.log_softmax(logits)), targets[..., None], -1)[..., 0]
  valid = np.arange(targets.shape[1])[None, :] < lengths[:, None]
  return (lp * valid).sum(1)


def test_greedy_matches_uncached_argmax(tiny):
  model, params, enc = tiny
  out = np.asarray(decoding.greedy_decode(model, params, enc, 7))
  ref = np.zeros_like(out)
  done = np.zeros(len(enc), bool)
  # A full forward pass over [start, ref[:, :i], zeros...]: the decoder is causal, so position i
  # sees only the start token and the i ids chosen so far (one shape, so one compile).
  forward = jax.jit(lambda dec_in: model.apply({"params": params}, enc, dec_in))
  for i in range(out.shape[1]):
    dec_in = np.concatenate([np.zeros((len(enc), 1), np.int32), ref[:, :-1]], axis=1)
    dec_in[:, i + 1 :] = 0
    logits = forward(jnp.asarray(dec_in))
    nxt = np.array(jnp.argmax(logits[:, i], -1))
    nxt[done] = 0
    ref[:, i] = nxt
    done |= nxt == EOS
  np.testing.assert_array_equal(out, ref)
  # The fixture is only a real test if some rows end early and some run to the limit.
  assert (out == EOS).any() and not (out == EOS).any(axis=1).all()


def test_greedy_from_a_precomputed_encoder_output_gives_the_same_ids(tiny):
  model, params, enc = tiny
  encoded, mask = model.apply({"params": params}, enc, method="encode_for_decoder")
  np.testing.assert_array_equal(
    np.asarray(decoding.greedy_decode_encoded(model, params, encoded, mask, 7)),
    np.asarray(decoding.greedy_decode(model, params, enc, 7)),
  )


def test_beam_search_is_exact_when_beam_covers_every_prefix(tiny):
  model, params, enc = tiny
  L = 3
  seqs, scores = decoding.beam_search(
    model, params, enc, L, beam_size=VOCAB ** (L - 1), alpha=0.0, return_all=True
  )
  seqs, scores = np.asarray(seqs), np.asarray(scores)
  # Every sequence of length <= L that ends at its first EOS, or runs to L without one.
  cands = set()
  for s in itertools.product(range(VOCAB), repeat=L):
    s = list(s)
    cands.add(tuple(s[: s.index(EOS) + 1]) if EOS in s else tuple(s))
  cands = sorted(cands)
  targets = np.zeros((len(cands), L), np.int32)
  lengths = np.array([len(c) for c in cands])
  for j, c in enumerate(cands):
    targets[j, : len(c)] = c
  for b in range(len(enc)):
    lp = _sequence_logprobs(model, params, enc[b], targets, lengths)
    best = int(np.argmax(lp))
    got = list(seqs[b, 0])
    want = list(targets[best])
    assert got == want, (b, got, want)
    np.testing.assert_allclose(scores[b, 0], lp[best], atol=1e-4)


def test_beam_scores_are_the_model_logprobs_with_length_penalty(tiny):
  model, params, enc = tiny
  L, alpha = 6, 0.6
  seqs, scores = decoding.beam_search(
    model, params, enc, L, beam_size=3, alpha=alpha, return_all=True
  )
  seqs, scores = np.asarray(seqs), np.asarray(scores)
  for b in range(len(enc)):
    rows = seqs[b]
    lengths = np.array([list(r).index(EOS) + 1 if EOS in r else L for r in rows])
    lp = _sequence_logprobs(model, params, enc[b], rows, lengths)
    penalty = ((5.0 + lengths) / 6.0) ** alpha
    np.testing.assert_allclose(scores[b], lp / penalty, atol=1e-4)
    assert np.all(np.diff(scores[b]) <= 1e-6), "beams must come best first"


def test_bad_decoding_arguments_are_refused(tiny):
  model, params, enc = tiny
  with pytest.raises(ValueError, match="max_decode_len"):
    decoding.greedy_decode(model, params, enc, 0)
  with pytest.raises(ValueError, match="beam_size"):
    decoding.beam_search(model, params, enc, 4, beam_size=0)
  with pytest.raises(ValueError, match="nucleus"):
    decoding.decode(model, params, enc, 4, method="nucleus")


def test_trim_after_eos():
  assert decoding.trim_after_eos(np.array([[5, 6, 1, 7], [4, 0, 0, 0], [1, 0, 0, 0]])) == [
    [5, 6],
    [4],
    [],
  ]
