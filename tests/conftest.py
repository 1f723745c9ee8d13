"""Fixtures shared by every test folder."""

import os
import pathlib
import shutil
import tempfile

import pytest

REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]

_CACHE_ENV = "JAX_COMPILATION_CACHE_DIR"
_created_cache_dir = None


def pytest_configure(config):
  """One persistent XLA compilation cache for the whole session.

  Many tests start `scripts/train.py` or `eval.py` several times on the same tiny config (a straight
  run, an interrupted run, its restart); with a shared cache only the first process compiles the
  train step. The variables are set here, on the controller before xdist starts its workers, so
  every worker and every subprocess they start inherit them. A cache the caller already set is
  left alone; the one made here is removed at the end.
  """
  global _created_cache_dir
  if os.environ.get(_CACHE_ENV) or hasattr(config, "workerinput"):
    return
  _created_cache_dir = tempfile.mkdtemp(prefix="adalink-test-xla-cache-")
  os.environ[_CACHE_ENV] = _created_cache_dir
  # Cache every executable: test compilations are small and fast, but there are many of them.
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


def pytest_unconfigure(config):
  if _created_cache_dir is not None:
    shutil.rmtree(_created_cache_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def shared_dir() -> pathlib.Path:
  """The read-only `shared/` folder (env ADALINK_SHARED, else `shared` beside the repo root);
  tests that need it skip when it is absent."""
  path = pathlib.Path(os.environ.get("ADALINK_SHARED", REPO_ROOT.parent / "shared"))
  if not path.is_dir():
    pytest.skip(f"shared data folder {path} not found (set ADALINK_SHARED to its location)")
  return path
