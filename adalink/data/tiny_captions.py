"""Writes ``testdata/captions_tiny``: a synthetic "images + captions JSON" folder for smoke runs.

Twelve small PNGs (a coloured square, circle or bar on a plain background; 48 x 64 pixels, so
resizing is exercised) and ``captions.json`` in the generic format read by
``caption_annotations.load_image_captions``, three captions per image describing the shape and
colours. Nothing here comes from a real dataset.

Regenerate (deterministic) with ``python -m adalink.data.tiny_captions [out_dir]``.
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np

DEFAULT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "testdata", "captions_tiny")
HEIGHT, WIDTH = 48, 64

COLORS = {
  "red": (220, 30, 30),
  "green": (30, 170, 60),
  "blue": (40, 70, 220),
  "yellow": (240, 210, 40),
  "white": (245, 245, 245),
  "black": (15, 15, 15),
}
# (shape, foreground, background) for each image, in file order.
SCENES = [
  ("square", "red", "blue"),
  ("circle", "yellow", "black"),
  ("bar", "green", "white"),
  ("square", "white", "green"),
  ("circle", "red", "white"),
  ("bar", "blue", "yellow"),
  ("square", "black", "yellow"),
  ("circle", "blue", "green"),
  ("bar", "red", "black"),
  ("square", "green", "red"),
  ("circle", "white", "blue"),
  ("bar", "yellow", "red"),
]


def render(shape: str, fg: str, bg: str) -> np.ndarray:
  """The uint8 [HEIGHT, WIDTH, 3] picture of one scene."""
  image = np.empty((HEIGHT, WIDTH, 3), np.uint8)
  image[:] = COLORS[bg]
  yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH]
  if shape == "square":
    mask = (abs(yy - HEIGHT // 2) < 14) & (abs(xx - WIDTH // 2) < 14)
  elif shape == "circle":
    mask = (yy - HEIGHT // 2) ** 2 + (xx - WIDTH // 2) ** 2 < 15**2
  else:
    mask = abs(yy - HEIGHT // 2) < 6
  image[mask] = COLORS[fg]
  return image


def captions_for(shape: str, fg: str, bg: str) -> list[str]:
  thing = "horizontal bar" if shape == "bar" else shape
  return [
    f"A {fg} {thing} on a {bg} background.",
    f"A {thing} coloured {fg} in front of {bg}.",
    f"{fg.capitalize()} {shape} , {bg} background .",
  ]


def write_captions_tiny(out_dir: str = DEFAULT_DIR) -> str:
  from PIL import Image  # only needed to write the fixture

  os.makedirs(os.path.join(out_dir, "images"), exist_ok=True)
  entries = []
  for i, (shape, fg, bg) in enumerate(SCENES):
    name = f"images/{i:02d}_{fg}_{shape}.png"
    Image.fromarray(render(shape, fg, bg)).save(os.path.join(out_dir, name), optimize=False)
    entries.append(
      {
        "file_name": name,
        "id": f"tiny{i:02d}",
        "width": WIDTH,
        "height": HEIGHT,
        "captions": captions_for(shape, fg, bg),
      }
    )
  data = {
    "dataset": "captions_tiny (synthetic, written by adalink.data.tiny_captions)",
    "n_images": len(entries),
    "n_captions": sum(len(e["captions"]) for e in entries),
    "images": entries,
  }
  with open(os.path.join(out_dir, "captions.json"), "w", encoding="utf-8") as f:
    json.dump(data, f, indent=1)
    f.write("\n")
  return out_dir


if __name__ == "__main__":
  print(write_captions_tiny(sys.argv[1] if len(sys.argv) > 1 else DEFAULT_DIR))
