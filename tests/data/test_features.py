"""Batches for the model: features, dtypes and shapes, agreement with seqio's converter, packing,
task ids, images, and order that depends only on (seed, shard)."""

import numpy as np
import pytest
import seqio

from adalink.data.tasks import captioning, glue, glue_spec
from adalink.data.pipeline import features

LENGTHS = {"inputs": 96, "targets": 16}


@pytest.fixture(scope="module")
def rte(tiny_glue_dir):
  return glue.get_glue_task("rte", data_dir=tiny_glue_dir)


def _take(it, n):
  return [next(it) for _ in range(n)]


def test_unpacked_batches_match_seqio_encdec_converter(rte):
  ours = list(features.make_batches(rte, "validation", LENGTHS, 4, shuffle=False))
  ds = seqio.EncDecFeatureConverter(pack=False)(
    rte.get_dataset(LENGTHS, "validation", shuffle=False, try_in_mem_cache=False), LENGTHS
  )
  theirs = list(ds.batch(4).as_numpy_iterator())
  assert len(ours) == len(theirs) == 3  # 12 rows, last batch kept
  for a, b in zip(ours, theirs):
    for k in ("encoder_input_tokens", "decoder_input_tokens", "decoder_target_tokens"):
      assert a[k].dtype == np.int32
      np.testing.assert_array_equal(a[k], b[k])
    assert a["decoder_loss_weights"].dtype == np.float32
    np.testing.assert_array_equal(a["decoder_loss_weights"], b["decoder_loss_weights"])


def test_feature_semantics(rte):
  b = next(features.make_batches(rte, "train", LENGTHS, 8, seed=3))
  assert b["encoder_input_tokens"].shape == (8, 96)
  assert b["decoder_target_tokens"].shape == b["decoder_input_tokens"].shape == (8, 16)
  tgt, inp, w = b["decoder_target_tokens"], b["decoder_input_tokens"], b["decoder_loss_weights"]
  np.testing.assert_array_equal(inp[:, 0], 0)  # BOS is 0
  np.testing.assert_array_equal(inp[:, 1:], tgt[:, :-1])  # targets shifted right
  np.testing.assert_array_equal(w, (tgt != 0).astype(np.float32))
  for row in tgt:  # each target ends in EOS (1), then padding 0
    n = int((row != 0).sum())
    assert row[n - 1] == 1 and not row[n:].any()
  assert b["task_id"].dtype == np.int32
  np.testing.assert_array_equal(b["task_id"], glue_spec.task_id("rte"))


def test_order_depends_only_on_seed_and_shard(rte):
  def run(seed, **kw):
    return _take(features.make_batches(rte, "train", LENGTHS, 4, seed=seed, repeat=True, **kw), 10)

  a, b, c = run(7), run(7), run(8)
  for x, y in zip(a, b):
    for k in x:
      np.testing.assert_array_equal(x[k], y[k])
  assert any(
    not np.array_equal(x["encoder_input_tokens"], y["encoder_input_tokens"]) for x, y in zip(a, c)
  )
  s1 = run(7, shard_index=1, num_shards=2)
  s1_again = run(7, shard_index=1, num_shards=2)
  np.testing.assert_array_equal(s1[0]["encoder_input_tokens"], s1_again[0]["encoder_input_tokens"])


def test_shards_are_disjoint_and_cover_every_example(rte):
  for shuffle in (False, True):
    seen = []
    for shard in range(3):
      for b in features.make_batches(
        rte,
        "train",
        LENGTHS,
        5,
        shuffle=shuffle,
        seed=1,
        shard_index=shard,
        num_shards=3,
        passthrough=("idx",),
      ):
        seen.extend(b["idx"].tolist())
    assert sorted(seen) == list(range(32)), shuffle


def test_unshuffled_order_is_file_order_and_matches_iter_examples(rte):
  batches = list(
    features.make_batches(
      rte,
      "validation",
      LENGTHS,
      5,
      shuffle=False,
      passthrough=("idx", "targets_pretokenized", "label"),
    )
  )
  idx = np.concatenate([b["idx"] for b in batches])
  np.testing.assert_array_equal(idx, np.arange(12))
  exs = list(features.iter_examples(rte, "validation", keys=("targets_pretokenized",)))
  assert [e["targets_pretokenized"] for e in exs] == list(
    np.concatenate([b["targets_pretokenized"] for b in batches])
  )


def test_repeat_gives_full_batches_forever(rte):
  it = features.make_batches(rte, "validation", LENGTHS, 5, seed=0, repeat=True)
  assert all(b["encoder_input_tokens"].shape[0] == 5 for b in _take(it, 7))  # 35 > 12 rows


def test_packing_adds_segments_and_keeps_a_single_task_id(rte):
  b = next(
    features.make_batches(rte, "train", {"inputs": 256, "targets": 48}, 2, seed=0, pack=True)
  )
  for k in ("encoder_segment_ids", "encoder_positions", "decoder_segment_ids", "decoder_positions"):
    assert b[k].shape[0] == 2 and b[k].dtype == np.int32
  assert b["encoder_segment_ids"].max() >= 2  # several examples share a row
  seg, pos = b["encoder_segment_ids"][0], b["encoder_positions"][0]
  starts = np.flatnonzero(np.diff(seg, prepend=0) != 0)
  assert all(pos[s] == 0 for s in starts if seg[s] != 0)
  np.testing.assert_array_equal(b["task_id"], glue_spec.task_id("rte"))


def test_mixture_batches_carry_task_ids(tiny_glue_dir):
  mix = glue.get_glue_mixture(tasks=("sst2", "cola"), data_dir=tiny_glue_dir)
  ids = np.concatenate(
    [
      b["task_id"]
      for b in _take(features.make_batches(mix, "train", LENGTHS, 8, seed=0, repeat=True), 4)
    ]
  )
  assert set(ids.tolist()) == {glue_spec.task_id("sst2"), glue_spec.task_id("cola")}
  with pytest.raises(ValueError, match="per-example task_id"):
    features.make_batches(mix, "train", LENGTHS, 8, pack=True)


def test_caption_batches_carry_images(tiny_captions_dir):
  task = captioning.get_image_caption_task(tiny_captions_dir / "captions.json", image_size=(20, 28))
  b = next(
    features.make_batches(
      task, "train", {"inputs": 16, "targets": 48}, 3, seed=0, passthrough=("image_id",)
    )
  )
  assert b["images"].shape == (3, 20, 28, 3) and b["images"].dtype == np.float32
  assert b["image_id"].shape == (3,)
  with pytest.raises(ValueError, match="variable shape"):
    features.make_batches(
      task, "all", {"inputs": 16, "targets": 48}, 3, passthrough=("references",)
    )
  with pytest.raises(ValueError, match="pack=True"):
    features.make_batches(task, "train", {"inputs": 16, "targets": 48}, 3, pack=True)


def test_bad_arguments(rte):
  with pytest.raises(ValueError, match="feature_lengths"):
    features.make_batches(rte, "train", {"inputs": 8}, 4)
  with pytest.raises(ValueError, match="batch_size"):
    features.make_batches(rte, "train", LENGTHS, 0)
  with pytest.raises(ValueError, match="shard_index"):
    features.make_batches(rte, "train", LENGTHS, 4, shard_index=2, num_shards=2)
  with pytest.raises(ValueError, match="no split 'dev'"):
    features.make_batches(rte, "dev", LENGTHS, 4)
  with pytest.raises(ValueError, match="'nope'"):
    features.make_batches(rte, "train", LENGTHS, 4, passthrough=("nope",))
  with pytest.raises(TypeError):
    features.make_batches(object(), "train", LENGTHS, 4)


def test_convert_dataset_works_on_any_seqio_style_dataset():
  import tensorflow as tf

  ds = tf.data.Dataset.from_generator(
    lambda: iter(
      [
        {"inputs": [5, 6, 1], "targets": [7, 1], "task_id": 3},
        {"inputs": [8, 1], "targets": [9, 9, 1], "task_id": 3},
      ]
    ),
    output_signature={
      "inputs": tf.TensorSpec([None], tf.int32),
      "targets": tf.TensorSpec([None], tf.int32),
      "task_id": tf.TensorSpec([], tf.int32),
    },
  )
  batch = next(
    features.batch_dataset(
      features.convert_dataset(ds, {"inputs": 4, "targets": 4}), 2
    ).as_numpy_iterator()
  )
  np.testing.assert_array_equal(batch["encoder_input_tokens"], [[5, 6, 1, 0], [8, 1, 0, 0]])
  np.testing.assert_array_equal(batch["decoder_input_tokens"], [[0, 7, 1, 0], [0, 9, 9, 1]])
  np.testing.assert_array_equal(batch["decoder_loss_weights"], [[1, 1, 0, 0], [1, 1, 1, 0]])
  np.testing.assert_array_equal(batch["task_id"], [3, 3])
  packed = next(
    features.batch_dataset(
      features.convert_dataset(ds, {"inputs": 8, "targets": 8}, pack=True, constant_task_id=3), 1
    ).as_numpy_iterator()
  )
  np.testing.assert_array_equal(packed["encoder_segment_ids"], [[1, 1, 1, 2, 2, 0, 0, 0]])
  np.testing.assert_array_equal(packed["decoder_input_tokens"], [[0, 7, 0, 9, 9, 0, 0, 0]])
  np.testing.assert_array_equal(packed["task_id"], [3])
