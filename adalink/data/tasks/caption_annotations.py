"""Readers of caption annotation files into (image id, image path, all captions) records.

Pure Python, so evaluation code can load references without TensorFlow. Three formats:

- COCO Karpathy splits (``dataset_coco.json``): ``{"images": [{"filepath", "filename", "split",
  "cocoid", "sentences": [{"raw", ...}]}]}``; splits ``train`` (Karpathy's train plus ``restval``, the
  usual practice, unless ``include_restval=False``), ``validation`` (``val``), ``test``, ``restval``.
  Image path: ``<image_dir>/<filepath>/<filename>`` (``filepath`` is optional, as in the Flickr
  variants of the same format).
- TextCaps (``TextCaps_0.1_{train,val,test}.json``): ``{"data": [...]}`` with one entry per caption
  (``image_id``, ``image_path`` or ``image_name``, ``caption_str``, ``reference_strs``); entries are
  grouped per image. Test entries carry no captions.
- Generic "images + captions JSON" (``captions-flickr8k-1k/captions.json`` is one):
  ``{"images": [{"file_name", "captions": [...], "split"?, "id"?}]}`` or a bare list of such
  entries, image paths relative to ``image_dir`` (default: the JSON's folder).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from typing import Any, Iterable, Mapping

KARPATHY_SPLITS = {
  "train": ("train", "restval"),
  "validation": ("val",),
  "test": ("test",),
  "restval": ("restval",),
}
ALL_SPLIT = "all"


@dataclasses.dataclass(frozen=True)
class CaptionRecord:
  image_id: str
  image_path: str
  captions: tuple[str, ...]


def _load_json(path: str | os.PathLike) -> Any:
  if not os.path.isfile(path):
    raise FileNotFoundError(f"caption annotation file not found: {os.fspath(path)!r}")
  with open(path, encoding="utf-8") as f:
    try:
      return json.load(f)
    except json.JSONDecodeError as e:
      raise ValueError(f"{os.fspath(path)}: not valid JSON ({e})") from None


def _clean(caption: Any, where: str) -> str:
  if not isinstance(caption, str):
    raise ValueError(f"{where}: caption {caption!r} is not a string")
  return " ".join(caption.split())


def check_images_exist(records: Iterable[CaptionRecord], what: str) -> None:
  """FileNotFoundError naming the first missing image (and how many are missing)."""
  missing = [r.image_path for r in records if not os.path.isfile(r.image_path)]
  if missing:
    raise FileNotFoundError(f"{what}: {len(missing)} image file(s) missing, first: {missing[0]!r}")


def load_karpathy(
  annotation_file: str | os.PathLike,
  image_dir: str | os.PathLike,
  split: str,
  include_restval: bool = True,
) -> list[CaptionRecord]:
  """Records of one Karpathy split (see the module docstring for split names)."""
  if split not in KARPATHY_SPLITS:
    raise ValueError(f"unknown Karpathy split {split!r}; expected one of {tuple(KARPATHY_SPLITS)}")
  wanted = KARPATHY_SPLITS[split]
  if split == "train" and not include_restval:
    wanted = ("train",)
  data = _load_json(annotation_file)
  if not isinstance(data, dict) or not isinstance(data.get("images"), list):
    raise ValueError(
      f"{os.fspath(annotation_file)}: expected {{'images': [...]}} (Karpathy format)"
    )
  records = []
  for i, entry in enumerate(data["images"]):
    where = f"{os.fspath(annotation_file)}: images[{i}]"
    try:
      if entry["split"] not in wanted:
        continue
      filename = entry["filename"]
      sentences = entry["sentences"]
    except (KeyError, TypeError) as e:
      raise ValueError(f"{where}: missing field {e}") from None
    path = os.path.join(os.fspath(image_dir), entry.get("filepath", ""), filename)
    image_id = str(entry.get("cocoid", entry.get("imgid", filename)))
    captions = tuple(_clean(s.get("raw", ""), where) for s in sentences)
    records.append(CaptionRecord(image_id, path, captions))
  return records


def load_textcaps(
  annotation_file: str | os.PathLike, image_dir: str | os.PathLike
) -> list[CaptionRecord]:
  """Records of one TextCaps file, one per image, in first-appearance order."""
  data = _load_json(annotation_file)
  if not isinstance(data, dict) or not isinstance(data.get("data"), list):
    raise ValueError(f"{os.fspath(annotation_file)}: expected {{'data': [...]}} (TextCaps format)")
  by_image: dict[str, dict] = {}
  for i, entry in enumerate(data["data"]):
    where = f"{os.fspath(annotation_file)}: data[{i}]"
    if not isinstance(entry, dict) or "image_id" not in entry:
      raise ValueError(f"{where}: missing field 'image_id'")
    image_id = str(entry["image_id"])
    slot = by_image.setdefault(image_id, {"entry": entry, "captions": [], "refs": None})
    if entry.get("reference_strs") and slot["refs"] is None:
      slot["refs"] = [_clean(c, where) for c in entry["reference_strs"]]
    if entry.get("caption_str"):
      slot["captions"].append(_clean(entry["caption_str"], where))
  records = []
  for image_id, slot in by_image.items():
    entry = slot["entry"]
    candidates = []
    if entry.get("image_path"):
      candidates.append(os.path.join(os.fspath(image_dir), entry["image_path"]))
    if entry.get("image_name"):
      candidates.append(os.path.join(os.fspath(image_dir), entry["image_name"] + ".jpg"))
    if not candidates:
      raise ValueError(
        f"{os.fspath(annotation_file)}: image {image_id!r} has neither "
        f"'image_path' nor 'image_name'"
      )
    path = next((c for c in candidates if os.path.isfile(c)), candidates[0])
    # reference_strs is the full per-image list; collected caption_str is the fallback.
    captions = slot["refs"] if slot["refs"] is not None else slot["captions"]
    records.append(CaptionRecord(image_id, path, tuple(captions)))
  return records


def hash_fraction(key: str) -> float:
  """A stable pseudo-random number in [0, 1) from a string."""
  return int(hashlib.sha256(key.encode("utf-8")).hexdigest()[:8], 16) / 2**32


def load_image_captions(
  annotation_file: str | os.PathLike,
  image_dir: str | os.PathLike | None = None,
  validation_fraction: float = 0.1,
) -> dict[str, list[CaptionRecord]]:
  """Records of a generic captions JSON, by split.

  Split ``all`` holds every image. Entries with a ``split`` field are also put in that split
  (``val`` is read as ``validation``); the others go to ``validation`` with probability
  ``validation_fraction`` by a stable hash of the image id, else to ``train``.
  """
  if not 0.0 <= validation_fraction <= 1.0:
    raise ValueError(f"validation_fraction must be in [0, 1], got {validation_fraction!r}")
  data = _load_json(annotation_file)
  entries = data.get("images") if isinstance(data, dict) else data
  if not isinstance(entries, list):
    raise ValueError(f"{os.fspath(annotation_file)}: expected {{'images': [...]}} or a list")
  if image_dir is None:
    image_dir = os.path.dirname(os.path.abspath(annotation_file))
  splits: dict[str, list[CaptionRecord]] = {ALL_SPLIT: [], "train": [], "validation": []}
  seen = set()
  for i, entry in enumerate(entries):
    where = f"{os.fspath(annotation_file)}: images[{i}]"
    if not isinstance(entry, Mapping) or "file_name" not in entry or "captions" not in entry:
      raise ValueError(f"{where}: each entry needs 'file_name' and 'captions'")
    captions = entry["captions"]
    if not isinstance(captions, list):
      raise ValueError(f"{where}: 'captions' must be a list of strings")
    image_id = str(entry.get("id", entry.get("image_id", entry["file_name"])))
    if image_id in seen:
      raise ValueError(f"{where}: duplicate image id {image_id!r}")
    seen.add(image_id)
    record = CaptionRecord(
      image_id,
      os.path.join(os.fspath(image_dir), entry["file_name"]),
      tuple(_clean(c, where) for c in captions),
    )
    splits[ALL_SPLIT].append(record)
    if "split" in entry:
      name = "validation" if entry["split"] == "val" else str(entry["split"])
    else:
      name = "validation" if hash_fraction(image_id) < validation_fraction else "train"
    splits.setdefault(name, []).append(record)
  return splits
