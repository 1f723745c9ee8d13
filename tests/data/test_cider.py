"""CIDEr-D against the COCO caption evaluation's scorer (pycocoevalcap 1.2 ``Cider``: CIDEr-D with
the sigma = 6 length penalty and clipping). Its PTB tokeniser needs Java, so both sides get text that
is already tokenised (by our PTB tokeniser, which test_ptb_tokenizer.py pins separately)."""

import json
import random

import pytest

from adalink.data.metrics import cider, ptb_tokenizer

TOL = 1e-6


def _reference_cider():
  return pytest.importorskip(
    "pycocoevalcap.cider.cider", reason="pycocoevalcap (test-only dependency) is not installed"
  ).Cider


def _compare(cands, refs):
  """(corpus diff, worst per-image diff, our corpus score) against pycocoevalcap."""
  keys = list(refs)
  ours, per_image = cider.cider_d(cands, refs)
  theirs, their_per_image = _reference_cider()().compute_score(
    {k: refs[k] for k in keys}, {k: [cands[k]] for k in keys}
  )
  worst = max(abs(per_image[k] - float(s)) for k, s in zip(keys, their_per_image))
  return abs(ours - float(theirs)), worst, ours


def test_flickr_captions_with_one_reference_held_out(flickr_dir):
  data = json.loads((flickr_dir / "captions.json").read_text())
  caps = {im["flickr8k_id"]: im["captions"] for im in data["images"]}
  tokenized = ptb_tokenizer.tokenize_captions(caps)
  for held_out in (0, 4):
    cands = {k: v[held_out] for k, v in tokenized.items()}
    refs = {k: v[:held_out] + v[held_out + 1 :] for k, v in tokenized.items()}
    corpus_diff, image_diff, score = _compare(cands, refs)
    print(
      f"\nheld-out caption {held_out}: CIDEr-D {score:.6f} over {len(cands)} images; "
      f"|corpus diff| {corpus_diff:.2e}, max |per-image diff| {image_diff:.2e}"
    )
    assert corpus_diff <= TOL and image_diff <= TOL


def test_random_corpora_with_repeats_and_empty_candidates():
  rng = random.Random(0)
  words = "a an the dog cat man red blue runs sits on in grass water ball".split()
  for trial in range(20):
    n_images = rng.randint(1, 30)
    refs, cands = {}, {}
    for i in range(n_images):
      refs[i] = [
        " ".join(rng.choices(words, k=rng.randint(1, 12))) for _ in range(rng.randint(1, 6))
      ]
      cands[i] = " ".join(rng.choices(words[:5], k=rng.randint(0, 15)))  # repeats: clipping
    corpus_diff, image_diff, _ = _compare(cands, refs)
    assert corpus_diff <= TOL and image_diff <= TOL, trial


def test_a_perfect_distinctive_caption_scores_ten():
  # Every n-gram occurs in one image's references only, so the cosine is 1 for n = 1..4.
  score, per_image = cider.cider_d(
    {"a": "a red ball here", "b": "two dogs run fast"},
    {"a": ["a red ball here"], "b": ["two dogs run fast"]},
  )
  assert score == pytest.approx(10.0) and per_image == pytest.approx({"a": 10.0, "b": 10.0})


def test_length_penalty_and_clipping_lower_the_score():
  refs = {"a": ["a red ball on the grass"], "b": ["two dogs run fast today"]}
  full, _ = cider.cider_d({"a": "a red ball on the grass", "b": "two dogs run fast today"}, refs)
  longer, _ = cider.cider_d(
    {"a": "a red ball on the grass red ball red ball", "b": "two dogs run fast today"}, refs
  )
  assert longer < full


def test_tokenize_option_equals_tokenising_first():
  refs = {1: ["A dog's ball.", "The dog, running!"], 2: ["Two cats (sleeping)."]}
  cands = {1: "A dog's ball!", 2: "two cats sleeping"}
  expected = cider.cider_d(
    {k: ptb_tokenizer.tokenize(v) for k, v in cands.items()}, ptb_tokenizer.tokenize_captions(refs)
  )
  assert cider.cider_d(cands, refs, tokenize=True) == expected


def test_bad_inputs():
  with pytest.raises(ValueError, match="same image keys"):
    cider.cider_d({1: "a"}, {2: ["a"]})
  with pytest.raises(ValueError, match="non-empty"):
    cider.cider_d({1: "a"}, {1: []})
  with pytest.raises(ValueError, match="at least one"):
    cider.cider_d({}, {})
