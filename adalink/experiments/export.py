"""Export a model of this codebase as a Hugging Face T5 directory and/or a T5X checkpoint file.

`export(ExportOptions(...))` restores a run directory written by the trainer (its config.json and
checkpoints: the frozen base comes from the config's checkpoint or seed, the trained part from the
run), or reads a plain checkpoint, and writes it. `adapter` writes a run's trained part alone as
adapter files (`adalink.peft.adapter_file`; every method but ft), plus, for AdaLink with a linear
activation, its folded encoder tables. What the checkpoint outputs hold per method:
  * ft: the trained model;
  * lora: the base with every LoRA pair merged into its kernel (kernel + alpha / rank * A @ B);
  * adalink, pt: refused. AdaLink transforms only the encoder's input embeddings while the decoder
    (and a tied output layer) keep the original table, and prompt tuning prepends learned vectors
    to the encoder input; a Hugging Face T5ForConditionalGeneration has one shared token table and
    no prompts, so neither fits it. `base_only` writes the frozen base model instead (the adapters
    stay in the run directory).

Outputs: `hf` gets config.json, model.safetensors and spiece.model (from `vocab`, else the run's
model.vocab_path for SentencePiece runs, else a spiece.model beside `checkpoint`; byte vocabulary
runs have none to write); `t5x` gets a single-file msgpack T5X checkpoint. A non-empty `hf`
directory or an existing `t5x` file is refused unless `force` (which replaces the whole
directory); an output that is, or holds, the model being exported is always refused. Both outputs
are written under a temporary name and renamed into place, so an interrupted export leaves no
half-written output. `verify` reads both back through adalink.convert.load_checkpoint and checks
that every parameter equals the exported one.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import Any, Callable, Dict, Optional

from adalink import errors

SPIECE = "spiece.model"
EXPORTABLE = ("ft", "lora")
NOT_REPRESENTABLE = ("adalink", "pt")
WHICH = ("latest", "best")
DTYPES = ("float32", "bfloat16")


class ExportError(errors.AdalinkError):
  """An export refused before anything was written (or a read-back that differs)."""


@dataclasses.dataclass
class ExportOptions:
  """What to export (`workdir` or `checkpoint`) and where (`hf` and/or `t5x`)."""

  workdir: Optional[str] = None  # a run directory written by the trainer
  checkpoint: Optional[str] = None  # or a Hugging Face T5 directory / T5X checkpoint
  which: str = "latest"  # with workdir: the latest or the best (eval-selected) checkpoint
  step: Optional[int] = None  # with workdir: this step instead of the newest one
  size: Optional[str] = None  # with checkpoint: named size to check a T5X checkpoint against
  base_only: bool = False  # for AdaLink / prompt-tuning runs: export the frozen base model
  hf: Optional[str] = None  # output Hugging Face directory
  t5x: Optional[str] = None  # output T5X checkpoint file
  vocab: Optional[str] = None  # SentencePiece model to copy into the Hugging Face directory
  dtype: str = "float32"  # stored precision of the exported weights
  force: bool = False  # replace existing outputs (the whole hf directory, whatever it holds)
  verify: bool = False  # read the outputs back and compare every parameter
  adapter: Optional[str] = None  # with workdir: write the run's adapter files into this directory

  def check(self) -> None:
    """Refuses contradictory options and outputs that exist or overlap the source."""
    if bool(self.workdir) == bool(self.checkpoint):
      raise ExportError("give exactly one of workdir (a run directory) and checkpoint")
    if not self.hf and not self.t5x and not self.adapter:
      raise ExportError("nothing to write: give hf DIR, t5x FILE and/or adapter DIR")
    if self.adapter and not self.workdir:
      raise ExportError("adapter DIR exports a run's adapter: give workdir (a run directory)")
    if self.which not in WHICH:
      raise ExportError(f"which must be one of {WHICH}, got {self.which!r}")
    if self.dtype not in DTYPES:
      raise ExportError(f"dtype must be one of {DTYPES}, got {self.dtype!r}")
    if self.checkpoint and (self.which != "latest" or self.step is not None or self.base_only):
      raise ExportError("which, step and base_only apply to workdir runs only")
    if self.workdir and self.size:
      raise ExportError("size applies to checkpoint only (a run's size comes from its config)")
    _check_outputs(self)


def _check_outputs(o: ExportOptions) -> None:
  if o.hf:
    if os.path.exists(o.hf) and not os.path.isdir(o.hf):
      raise ExportError(f"--hf {o.hf!r} exists and is not a directory")
    if os.path.isdir(o.hf) and os.listdir(o.hf) and not o.force:
      raise ExportError(
        f"--hf {o.hf!r} is not empty ({len(os.listdir(o.hf))} entries); pass --force to replace it"
      )
  if o.t5x:
    if os.path.isdir(o.t5x):
      raise ExportError(f"--t5x {o.t5x!r} is a directory; it names the checkpoint file to write")
    if os.path.exists(o.t5x) and not o.force:
      raise ExportError(f"--t5x {o.t5x!r} exists; pass --force to replace it")
  source = os.path.abspath(o.workdir or o.checkpoint)
  for flag, out in (("--hf", o.hf), ("--t5x", o.t5x)):
    if out:
      out = os.path.abspath(out)
      if out == source or source.startswith(out + os.sep):
        raise ExportError(
          f"{flag} {out!r} is or holds the model being exported ({source!r}); "
          f"write the export elsewhere"
        )
  if o.hf and o.t5x and os.path.abspath(o.t5x).startswith(os.path.abspath(o.hf) + os.sep):
    raise ExportError(
      f"--t5x {o.t5x!r} is inside --hf {o.hf!r}; a directory holding both "
      f"formats is ambiguous to readers, so write them apart"
    )


def check_vocab(path: str, vocab_size: int, source: str) -> str:
  """`path`, if it is a SentencePiece model that fits a `vocab_size`-row token table."""
  if not os.path.isfile(path):
    raise ExportError(f"{source} {path!r}: no such file")
  import sentencepiece as spm

  try:
    pieces = spm.SentencePieceProcessor(model_file=path).get_piece_size()
  except Exception as e:  # sentencepiece raises RuntimeError/OSError for a bad file
    raise ExportError(f"{source} {path!r}: not a SentencePiece model ({e})") from None
  if pieces > vocab_size:
    raise ExportError(
      f"{source} {path!r} has {pieces} pieces but the model's token table has "
      f"only {vocab_size} rows: it is not this model's vocabulary"
    )
  return path


def _not_representable(workdir: str, method: str) -> ExportError:
  why = (
    "AdaLink adapts the encoder's input embeddings while the decoder and output layer keep "
    "the original table, and T5ForConditionalGeneration shares one table"
    if method == "adalink"
    else "prompt tuning prepends learned prompt vectors to the encoder input, which "
    "T5ForConditionalGeneration has no place for"
  )
  return ExportError(
    f"{workdir}: method {method!r} cannot be written as a Hugging Face T5 / T5X model: {why}. "
    "Pass --adapter DIR to write its adapter files (and, for AdaLink, the folded encoder table), "
    "--base-only to export the frozen base model, or decode with the run itself "
    "(scripts/infer.py --run)"
  )


def run_params(workdir: str, which: str = "latest", step=None, base_only: bool = False):
  """(T5Config, params as numpy, step, run config) of a run directory, ready to export.

  FT returns the trained model; LoRA the base with its adapters merged; AdaLink and prompt
  tuning only the frozen base, and only when `base_only` (see the module docstring).
  """
  import jax
  import numpy as np

  from adalink.models import layer_stack
  from adalink.peft import lora as lora_lib
  from adalink.train import trainer

  config = trainer.load_run_config(workdir)
  config.train.quiet = True
  kind = config.model.get("kind", "t5")
  if kind != "t5":
    raise ExportError(
      f"{workdir}: model.kind={kind!r}; only T5 runs can be exported as a T5 checkpoint"
    )
  method = config.method.name
  if method in NOT_REPRESENTABLE and not base_only:
    raise _not_representable(workdir, method)
  if method not in EXPORTABLE + NOT_REPRESENTABLE:
    raise ExportError(f"{workdir}: unknown method {method!r}")
  _, variables, _, p, restored_step = trainer.restore_for_eval(
    config, workdir, which, step, with_data=False
  )
  to_numpy = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x)), tree)
  # Checkpoints are written with unrolled layers (`layers_N`), whichever layout the run used.
  variables = layer_stack.unstack_layers(to_numpy(variables))
  params = variables["params"]
  if method == "lora":
    params = to_numpy(lora_lib.merge_lora(params, variables["adapters"], p.spec.rank, p.spec.alpha))
  model_config = p.model_config.replace(scan_layers=False, remat="none")
  return model_config, params, restored_step, config


def _run_vocab(config) -> Optional[str]:
  """The run's SentencePiece file, if it trained with one."""
  from adalink.train import trainer

  if config.model.get("vocab", "byte") != "sentencepiece":
    return None
  path = config.model.get("vocab_path") or ""
  return trainer.resolve_path(path) if path else None


def _checkpoint_vocab(checkpoint: str) -> Optional[str]:
  base = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(os.path.abspath(checkpoint))
  for cand in (os.path.join(base, SPIECE), os.path.join(os.path.dirname(base), SPIECE)):
    if os.path.isfile(cand):
      return cand
  return None


def _replace_dir(tmp: str, final: str) -> None:
  """Moves the finished `tmp` directory to `final`, replacing an existing one."""
  old = None
  if os.path.exists(final):
    old = f"{final}.old-{os.getpid()}"
    os.rename(final, old)
  os.rename(tmp, final)
  if old is not None:
    shutil.rmtree(old)


def write_hf(config, params, out_dir: str, vocab=None, dtype: str = "float32") -> None:
  from adalink.convert import hf_t5

  out_dir = os.path.abspath(out_dir)
  parent = os.path.dirname(out_dir)
  os.makedirs(parent, exist_ok=True)
  tmp = tempfile.mkdtemp(prefix=f".{os.path.basename(out_dir)}.tmp-", dir=parent)
  try:
    hf_t5.save_hf_t5(config, params, tmp, dtype=dtype)
    if vocab:
      shutil.copyfile(vocab, os.path.join(tmp, SPIECE))
    os.chmod(tmp, 0o755)
    _replace_dir(tmp, out_dir)
  except BaseException:
    shutil.rmtree(tmp, ignore_errors=True)
    raise


def write_t5x(config, params, path: str, step: int = 0, dtype: str = "float32") -> None:
  from adalink.convert import t5x

  t5x.save_t5x(params, os.path.abspath(path), step=step, config=config, dtype=dtype)


def verify(config, params, hf_dir=None, t5x_file=None) -> None:
  """Reads the outputs back and requires every parameter to equal `params` (after the stored
  precision's rounding)."""
  import numpy as np

  from adalink import convert
  from adalink.convert import tree

  want = tree.flatten(params)
  for path in (p for p in (hf_dir, t5x_file) if p):
    _, got = convert.load_checkpoint(path, config=config)
    got = tree.flatten(got)
    if set(got) != set(want):
      missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
      raise ExportError(
        f"verify {path}: parameter names differ: missing {missing[:5]}, extra {extra[:5]}"
      )
    for k in sorted(want):
      if not np.array_equal(np.asarray(got[k]), np.asarray(want[k], np.float32)):
        raise ExportError(f"verify {path}: parameter {k} differs from the exported model")


def export(options: ExportOptions, log: Callable[[str], None] = print) -> Dict[str, Any]:
  """Writes what `options` asks for; -> {"config", "params", "step", "vocab"} as exported."""
  import ml_dtypes
  import numpy as np

  o = options
  o.check()
  if o.adapter:
    from adalink.experiments import serve

    written = serve.export_adapter(o.workdir, o.adapter, o.which, o.step, overwrite=o.force)
    log(
      f"wrote adapter {written['adapter']} ({written['tensors']} tensors, "
      f"{written['adapter_bytes']} bytes, step {written['step']})"
      + (f" and folded encoder table {written['folded']}" if "folded" in written else "")
    )
    if not o.hf and not o.t5x:
      return {"adapter": written}
  if o.workdir:
    if not os.path.isdir(o.workdir):
      raise ExportError(f"--workdir {o.workdir!r}: no such directory")
    config, params, step, run_config = run_params(o.workdir, o.which, o.step, o.base_only)
    vocab_source, vocab = (
      ("--vocab", o.vocab) if o.vocab else ("the run's model.vocab_path", _run_vocab(run_config))
    )
  else:
    from adalink import convert
    from adalink.models import t5

    size = t5.get_config(o.size) if o.size else None
    config, params = convert.load_checkpoint(o.checkpoint, config=size)
    step = 0
    vocab_source, vocab = (
      ("--vocab", o.vocab)
      if o.vocab
      else (f"{SPIECE} beside --checkpoint", _checkpoint_vocab(o.checkpoint))
    )
  if config.separate_encoder_embedding:
    raise ExportError(
      "the model reads its encoder inputs from a separate table, which a "
      "Hugging Face T5 directory cannot hold"
    )
  if vocab:
    check_vocab(vocab, config.vocab_size, vocab_source)

  if o.dtype == "bfloat16":
    # What a bfloat16 file holds; verify compares against this rounding.
    import jax

    params = jax.tree_util.tree_map(
      lambda x: np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32), params
    )
  if o.hf:
    write_hf(config, params, o.hf, vocab, o.dtype)
    log(
      f"wrote Hugging Face T5 directory {o.hf}"
      + (
        f" (with {SPIECE} from {vocab})"
        if vocab
        else " (no spiece.model: the model uses no SentencePiece vocabulary; pass --vocab)"
      )
    )
  if o.t5x:
    write_t5x(config, params, o.t5x, step, o.dtype)
    log(f"wrote T5X checkpoint {o.t5x} (step {step})")
  if o.verify:
    verify(config, params, o.hf, o.t5x)
    log("verified: every parameter reads back equal")
  return {"config": config, "params": params, "step": step, "vocab": vocab}
