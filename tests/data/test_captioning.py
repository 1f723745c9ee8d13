"""Captioning tasks: image tensors of the configured size, every reference kept, the three annotation
formats (generic JSON, COCO Karpathy, TextCaps), normalisation, metric wiring and errors."""

import json

import numpy as np
import pytest
from PIL import Image

from adalink.data.tasks import caption_annotations, captioning
from adalink.data.metrics import cider
from adalink.data.fixtures import tiny_captions


def _examples(task, split, n=1000):
  ds = task.get_dataset(None, split=split, shuffle=False, try_in_mem_cache=False)
  return list(ds.take(n).as_numpy_iterator())


def _refs(ex):
  return [r.decode() for r in ex["references"]]


def test_tiny_task_images_have_the_configured_size_and_all_references(tiny_captions_dir):
  task = captioning.get_image_caption_task(tiny_captions_dir / "captions.json", image_size=(40, 56))
  data = json.loads((tiny_captions_dir / "captions.json").read_text())
  by_id = {e["id"]: e["captions"] for e in data["images"]}
  exs = _examples(task, "all")
  assert len(exs) == 12
  for ex in exs:
    assert ex["image"].shape == (40, 56, 3) and ex["image"].dtype == np.float32
    assert -1.0 <= ex["image"].min() and ex["image"].max() <= 1.0
    assert _refs(ex) == by_id[ex["image_id"].decode()]  # every reference, in order
    assert ex["targets_pretokenized"].decode() == by_id[ex["image_id"].decode()][0]
    assert ex["inputs_pretokenized"] == b"caption en"
  # Training gives one example per (image, caption); evaluation one per image.
  train = _examples(task, "train")
  val = _examples(task, "validation")
  assert len(train) == 3 * (12 - len(val))
  assert {e["image_id"] for e in train}.isdisjoint({e["image_id"] for e in val})
  assert captioning.references_for(task, "all") == [by_id[f"tiny{i:02d}"] for i in range(12)]


def test_pixels_are_decoded_resized_and_normalised(tiny_captions_dir):
  shape, fg, bg = tiny_captions.SCENES[0]  # red square on blue
  red = np.array(tiny_captions.COLORS[fg], np.float32)
  blue = np.array(tiny_captions.COLORS[bg], np.float32)
  expected = {
    "minus_one_to_one": lambda c: c / 127.5 - 1,
    "zero_one": lambda c: c / 255,
    "imagenet": lambda c: (
      (c / 255 - np.array([0.485, 0.456, 0.406])) / np.array([0.229, 0.224, 0.225])
    ),
  }
  for norm, f in expected.items():
    task = captioning.get_image_caption_task(
      tiny_captions_dir / "captions.json", image_size=24, normalization=norm
    )
    image = _examples(task, "all", 1)[0]["image"]
    assert image.shape == (24, 24, 3)
    np.testing.assert_allclose(image[12, 12], f(red), atol=1e-5)  # inside the square
    np.testing.assert_allclose(image[0, 0], f(blue), atol=1e-5)  # background corner


def test_flickr_task_yields_224px_images_and_five_references(flickr_dir):
  task = captioning.get_image_caption_task(flickr_dir / "captions.json", image_size=224)
  assert task.num_input_examples("all") == 1000
  data = json.loads((flickr_dir / "captions.json").read_text())
  exs = _examples(task, "all", 6)
  for ex, entry in zip(exs, data["images"]):
    assert ex["image"].shape == (224, 224, 3)
    assert _refs(ex) == entry["captions"] and len(entry["captions"]) == 5
    # Same picture as Pillow sees it: mean colour after a plain resize agrees closely.
    pil = Image.open(flickr_dir / entry["file_name"]).convert("RGB").resize((224, 224))
    pil_mean = np.asarray(pil, np.float32).mean(axis=(0, 1)) / 127.5 - 1
    np.testing.assert_allclose(ex["image"].mean(axis=(0, 1)), pil_mean, atol=0.02)
  refs = captioning.references_for(task, "all")
  assert len(refs) == 1000 and all(len(r) == 5 for r in refs)
  assert task.num_input_examples("train") + 5 * task.num_input_examples("validation") == 5000


def _karpathy_file(tmp_path, tiny_captions_dir):
  data = json.loads((tiny_captions_dir / "captions.json").read_text())
  splits = ["train", "train", "restval", "val", "test", "test"] * 2
  images = [
    {
      "filepath": "images",
      "filename": e["file_name"].split("/")[1],
      "cocoid": 500 + i,
      "split": splits[i],
      "sentences": [{"raw": c, "tokens": c.lower().split()} for c in e["captions"]],
    }
    for i, e in enumerate(data["images"])
  ]
  path = tmp_path / "dataset_coco.json"
  path.write_text(json.dumps({"dataset": "coco", "images": images}))
  return path


def test_coco_karpathy_splits(tmp_path, tiny_captions_dir):
  path = _karpathy_file(tmp_path, tiny_captions_dir)
  task = captioning.get_coco_karpathy_task(path, tiny_captions_dir, image_size=16)
  assert {s: task.num_input_examples(s) for s in task.splits} == {
    "train": 6 * 3,
    "validation": 2,
    "test": 4,
  }  # train includes restval
  ex = _examples(task, "validation", 1)[0]
  assert ex["image_id"] == b"503" and len(_refs(ex)) == 3 and ex["image"].shape == (16, 16, 3)
  no_restval = captioning.get_coco_karpathy_task(
    path, tiny_captions_dir, image_size=16, include_restval=False
  )
  assert no_restval.num_input_examples("train") == 4 * 3


def test_textcaps_groups_entries_per_image(tmp_path, tiny_captions_dir):
  data = json.loads((tiny_captions_dir / "captions.json").read_text())
  image_dir = tmp_path / "textcaps_images"
  (image_dir / "train").mkdir(parents=True)
  train, val, test = [], [], []
  for i, e in enumerate(data["images"]):
    name = f"{i:016x}"  # TextCaps names images by a hex id, stored as JPEG
    Image.open(tiny_captions_dir / e["file_name"]).convert("RGB").save(
      image_dir / "train" / f"{name}.jpg"
    )
    base = {"image_id": f"tc{i}", "image_name": name, "image_path": f"train/{name}.jpg"}
    if i < 8:  # train: one entry per caption, each with the full reference list
      train += [{**base, "caption_str": c, "reference_strs": e["captions"]} for c in e["captions"]]
    elif i < 10:
      val.append({**base, "caption_str": e["captions"][0], "reference_strs": e["captions"]})
    else:  # test entries carry no captions; found from image_name alone
      test.append({"image_id": f"tc{i}", "image_name": f"train/{name}"})
  files = {}
  for split, entries in (("train", train), ("validation", val), ("test", test)):
    files[split] = tmp_path / f"TextCaps_0.1_{split}.json"
    files[split].write_text(json.dumps({"dataset_name": "textcaps", "data": entries}))
  task = captioning.get_textcaps_task(files, image_dir, image_size=16)
  assert {s: task.num_input_examples(s) for s in task.splits} == {
    "train": 24,
    "validation": 2,
    "test": 2,
  }
  assert captioning.references_for(task, "validation") == [
    data["images"][8]["captions"],
    data["images"][9]["captions"],
  ]
  ex = _examples(task, "test", 1)[0]
  assert ex["image"].shape == (16, 16, 3) and list(ex["references"]) == []


def test_caption_metric_and_postprocessing(tiny_captions_dir):
  task = captioning.get_image_caption_task(tiny_captions_dir / "captions.json", image_size=16)
  refs = captioning.references_for(task, "all")
  ex = _examples(task, "all", 1)[0]
  assert task.postprocess_fn(ex["targets_pretokenized"], example=ex, is_target=True) == refs[0]
  assert task.postprocess_fn(b" a red square ") == "a red square"
  preds = [r[0] for r in refs]
  (metric_fn,) = task.metric_fns
  expected = 100 * cider.cider_d(dict(enumerate(preds)), dict(enumerate(refs)), tokenize=True)[0]
  assert metric_fn(refs, preds) == {"cider_d": pytest.approx(expected)}
  assert expected > 100  # a reference caption is a good candidate


def test_errors(tmp_path, tiny_captions_dir):
  with pytest.raises(FileNotFoundError, match="missing.json"):
    captioning.get_image_caption_task(tmp_path / "missing.json")
  bad = tmp_path / "captions.json"
  bad.write_text(json.dumps({"images": [{"file_name": "images/none.png", "captions": ["x"]}]}))
  with pytest.raises(FileNotFoundError, match="none.png"):
    captioning.get_image_caption_task(bad)
  bad.write_text(json.dumps({"images": [{"captions": ["x"]}]}))
  with pytest.raises(ValueError, match="file_name"):
    captioning.get_image_caption_task(bad)
  good = tiny_captions_dir / "captions.json"
  with pytest.raises(ValueError, match="normalization"):
    captioning.get_image_caption_task(good, normalization="standard")
  with pytest.raises(ValueError, match="image_size"):
    captioning.get_image_caption_task(good, image_size=(0, 4))
  with pytest.raises(ValueError, match="Karpathy split"):
    caption_annotations.load_karpathy(good, tiny_captions_dir, "dev")
  with pytest.raises(ValueError, match="missing field 'split'"):
    caption_annotations.load_karpathy(bad, tiny_captions_dir, "test")
  bad.write_text(json.dumps({"data": []}))
  with pytest.raises(ValueError, match="Karpathy format"):
    caption_annotations.load_karpathy(bad, tiny_captions_dir, "test")
  with pytest.raises(ValueError, match="TextCaps format"):
    caption_annotations.load_textcaps(good, tiny_captions_dir)
