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
  """Compilation settings for the whole session: a shared XLA cache and cheap compiler settings.

  Many tests start `scripts/train.py` or `eval.py` several times on the same tiny config (a straight
  run, an interrupted run, its restart); with a shared cache only the first process compiles the
  train step. The variables are set here, on the controller before xdist starts its workers, so
  every worker and every subprocess they start inherit them. A cache the caller already set is
  left alone; the one made here is removed at the end.

  Tests compile hundreds of small programs and run each for a few steps, so compiling, not running,
  is most of their time, and most compilations are single operations run eagerly. Two XLA CPU
  settings make compiling cheaper: the backend's optimisation level 0 (default 2) and the older
  CPU emitters instead of the fusion emitters (a trivial operation compiled in 26 ms with the
  defaults, 11.8 ms with both). The few large programs (T5-base and T5-small initialisation and
  steps) take longer, but the suite gains: measured on 2 cores, whole suite 9m45s at level 1
  with the fusion emitters, 8m19s at level 1 without them, 6m53s at level 0 without them. Runs
  compared bitwise all run under the same flags. A setting the caller chose is kept.
  """
  global _created_cache_dir
  if hasattr(config, "workerinput"):
    return
  flags = os.environ.get("XLA_FLAGS", "")
  if "xla_backend_optimization_level" not in flags:
    flags = f"{flags} --xla_backend_optimization_level=0".strip()
  if "xla_cpu_use_fusion_emitters" not in flags:
    flags = f"{flags} --xla_cpu_use_fusion_emitters=false"
  os.environ["XLA_FLAGS"] = flags
  if os.environ.get(_CACHE_ENV):
    return
  _created_cache_dir = tempfile.mkdtemp(prefix="adalink-test-xla-cache-")
  os.environ[_CACHE_ENV] = _created_cache_dir
  # Cache every executable: test compilations are small and fast, but there are many of them.
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")
  os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES", "-1")


# The slowest files (subprocess runs, many compilations), measured on 2 CPU cores, scheduled
# first: with `--dist loadfile` a worker takes whole files in collection order, so starting with
# the longest ones leaves the short ones to even out the two workers at the end.
_SLOWEST_FIRST = (
  "tests/train/test_trainer.py",
  "tests/train/test_preemption.py",
  "tests/train/test_gemma_run.py",
  "tests/scripts/test_placement_study.py",
  "tests/train/test_pretrain_run.py",
  "tests/scripts/test_infer_run.py",
  "tests/models/test_gemma.py",
  "tests/train/test_damaged_run.py",
  "tests/peft/test_methods.py",
  "tests/train/test_memory_plan.py",
  "tests/scripts/test_eval_script.py",
  "tests/peft/test_gemma_methods.py",
  "tests/peft/test_paligemma_methods.py",
  "tests/models/test_paligemma.py",
)


def pytest_collection_modifyitems(session, config, items):
  """Slowest files first (a stable sort: the order inside each file, and of the other files, is
  the collection order). Every worker sorts the same way, as xdist requires."""
  rank = {path: i for i, path in enumerate(_SLOWEST_FIRST)}
  items.sort(key=lambda item: rank.get(item.nodeid.split("::")[0], len(rank)))


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
