"""Paths for the data-layer tests: the project's own fixtures, and the real data in ``shared/``.

``shared/`` is the folder beside the checkout (``<repo>/../shared``) unless ADALINK_SHARED points
elsewhere; tests that need it skip, saying so, when it is missing.
"""

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("ADALINK_SHARED") or (REPO_ROOT / ".." / "shared")).resolve()
TESTDATA = REPO_ROOT / "adalink" / "data" / "fixtures" / "testdata"
TINY_GLUE = TESTDATA / "glue_tiny"
TINY_CAPTIONS = TESTDATA / "captions_tiny"


def shared_path(*parts: str) -> Path:
  """A path inside shared/, or a skip naming what is missing."""
  path = SHARED.joinpath(*parts)
  if not path.exists():
    pytest.skip(
      f"needs {path} (the shared/ data folder beside the checkout, or set "
      f"ADALINK_SHARED); not present on this machine"
    )
  return path


@pytest.fixture(scope="session")
def glue_dir() -> Path:
  return shared_path("data", "glue")


@pytest.fixture(scope="session")
def flickr_dir() -> Path:
  return shared_path("data", "captions-flickr8k-1k")


@pytest.fixture(scope="session")
def spiece_model() -> Path:
  return shared_path("models", "t5-vocab", "spiece.model")


@pytest.fixture(scope="session")
def tiny_glue_dir() -> Path:
  return TINY_GLUE


@pytest.fixture(scope="session")
def tiny_captions_dir() -> Path:
  return TINY_CAPTIONS
