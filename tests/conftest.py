"""Fixtures shared by every test folder."""

import os
import pathlib

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  """The read-only `shared/` folder (env ADALINK_SHARED, else `shared` beside the repo root);
  tests that need it skip when it is absent."""
  path = pathlib.Path(os.environ.get("ADALINK_SHARED", REPO_ROOT.parent / "shared"))
  if not path.is_dir():
    pytest.skip(f"shared data folder {path} not found (set ADALINK_SHARED to its location)")
  return path
