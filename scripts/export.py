#!/usr/bin/env python
"""Export a model of this codebase as a Hugging Face T5 directory and/or a T5X checkpoint file.

  python scripts/export.py --workdir /tmp/run --hf /tmp/run_hf --t5x /tmp/run.t5x
  python scripts/export.py --workdir /tmp/run --which best --hf /tmp/best_hf
  python scripts/export.py --checkpoint /ckpt/t5x/checkpoint_1000000 --size base \
      --vocab /ckpt/spiece.model --hf /tmp/base_hf

--workdir restores a run directory written by scripts/train.py (its config.json and checkpoints:
the frozen base comes from the config's checkpoint or seed, the trained part from the run). What
is written per method:
  * ft: the trained model;
  * lora: the base with every LoRA pair merged into its kernel (kernel + alpha / rank * A @ B);
  * adalink, pt: refused. AdaLink transforms only the encoder's input embeddings while the decoder
    (and a tied output layer) keep the original table, and prompt tuning prepends learned vectors
    to the encoder input; a Hugging Face T5ForConditionalGeneration has one shared token table and
    no prompts, so neither fits it. --base-only writes the frozen base model instead (the adapters
    stay in the run directory).
--checkpoint converts a plain checkpoint (Hugging Face directory or T5X checkpoint) instead.

Outputs: --hf DIR gets config.json, model.safetensors and spiece.model (from --vocab, else the
run's model.vocab_path for SentencePiece runs, else a spiece.model beside --checkpoint; byte
vocabulary runs have none to write). --t5x FILE gets a single-file msgpack T5X checkpoint.
A non-empty --hf directory or an existing --t5x file is refused unless --force (which replaces
the whole directory); an output that is, or holds, the model being exported is always refused.
Both outputs are written under a temporary name and renamed into place, so an interrupted export
leaves no half-written output. --verify reads both back through adalink.convert.load_checkpoint
and checks that every parameter equals the exported one.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

SPIECE = "spiece.model"
EXPORTABLE = ("ft", "lora")
NOT_REPRESENTABLE = ("adalink", "pt")


def parse_args(argv=None):
  p = argparse.ArgumentParser(
    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
  )
  src = p.add_mutually_exclusive_group(required=True)
  src.add_argument("--workdir", help="run directory written by scripts/train.py")
  src.add_argument("--checkpoint", help="a Hugging Face T5 directory or a T5X checkpoint")
  p.add_argument(
    "--which",
    choices=["latest", "best"],
    default="latest",
    help="with --workdir: the latest or the best (eval-selected) checkpoint",
  )
  p.add_argument("--step", type=int, help="with --workdir: this step instead of the newest one")
  p.add_argument("--size", help="with --checkpoint: named size to check a T5X checkpoint against")
  p.add_argument(
    "--base-only",
    action="store_true",
    help="for AdaLink / prompt-tuning runs: export the frozen base model",
  )
  p.add_argument("--hf", help="output Hugging Face directory")
  p.add_argument("--t5x", help="output T5X checkpoint file")
  p.add_argument("--vocab", help="SentencePiece model to copy into the Hugging Face directory")
  p.add_argument(
    "--dtype",
    choices=["float32", "bfloat16"],
    default="float32",
    help="stored precision of the exported weights",
  )
  p.add_argument(
    "--force",
    action="store_true",
    help="replace existing outputs (the whole --hf directory, whatever it holds)",
  )
  p.add_argument(
    "--verify", action="store_true", help="read the outputs back and compare every parameter"
  )
  args = p.parse_args(argv)
  if not args.hf and not args.t5x:
    p.error("nothing to write: give --hf DIR and/or --t5x FILE")
  if args.checkpoint and (args.which != "latest" or args.step is not None or args.base_only):
    p.error("--which, --step and --base-only apply to --workdir runs only")
  if args.workdir and args.size:
    p.error("--size applies to --checkpoint only (a run's size comes from its config)")
  return args


def _check_outputs(args) -> None:
  if args.hf:
    if os.path.exists(args.hf) and not os.path.isdir(args.hf):
      raise SystemExit(f"--hf {args.hf!r} exists and is not a directory")
    if os.path.isdir(args.hf) and os.listdir(args.hf) and not args.force:
      raise SystemExit(
        f"--hf {args.hf!r} is not empty ({len(os.listdir(args.hf))} entries); "
        f"pass --force to replace it"
      )
  if args.t5x:
    if os.path.isdir(args.t5x):
      raise SystemExit(f"--t5x {args.t5x!r} is a directory; it names the checkpoint file to write")
    if os.path.exists(args.t5x) and not args.force:
      raise SystemExit(f"--t5x {args.t5x!r} exists; pass --force to replace it")
  source = os.path.abspath(args.workdir or args.checkpoint)
  for flag, out in (("--hf", args.hf), ("--t5x", args.t5x)):
    if out:
      out = os.path.abspath(out)
      if out == source or source.startswith(out + os.sep):
        raise SystemExit(
          f"{flag} {out!r} is or holds the model being exported ({source!r}); "
          f"write the export elsewhere"
        )
  if (
    args.hf and args.t5x and os.path.abspath(args.t5x).startswith(os.path.abspath(args.hf) + os.sep)
  ):
    raise SystemExit(
      f"--t5x {args.t5x!r} is inside --hf {args.hf!r}; a directory holding both "
      f"formats is ambiguous to readers, so write them apart"
    )


def _check_vocab(path: str, vocab_size: int, source: str) -> str:
  if not os.path.isfile(path):
    raise SystemExit(f"{source} {path!r}: no such file")
  import sentencepiece as spm

  try:
    pieces = spm.SentencePieceProcessor(model_file=path).get_piece_size()
  except Exception as e:  # sentencepiece raises RuntimeError/OSError for a bad file
    raise SystemExit(f"{source} {path!r}: not a SentencePiece model ({e})") from None
  if pieces > vocab_size:
    raise SystemExit(
      f"{source} {path!r} has {pieces} pieces but the model's token table has "
      f"only {vocab_size} rows: it is not this model's vocabulary"
    )
  return path


def run_params(workdir: str, which: str = "latest", step=None, base_only: bool = False):
  """(T5Config, params as numpy, step, run config) of a run directory, ready to export.

  FT returns the trained model; LoRA the base with its adapters merged; AdaLink and prompt
  tuning only the frozen base, and only when `base_only` (see the module docstring).
  """
  import jax
  import numpy as np
  from adalink.peft import lora as lora_lib
  from adalink.train import trainer

  config = trainer.load_run_config(workdir)
  config.train.quiet = True
  kind = config.model.get("kind", "t5")
  if kind != "t5":
    raise SystemExit(
      f"{workdir}: model.kind={kind!r}; only T5 runs can be exported as a T5 checkpoint"
    )
  method = config.method.name
  if method in NOT_REPRESENTABLE and not base_only:
    raise SystemExit(
      f"{workdir}: method {method!r} cannot be written as a Hugging Face T5 / T5X model: "
      + (
        "AdaLink adapts the encoder's input embeddings while the decoder and output layer keep "
        "the original table, and T5ForConditionalGeneration shares one table"
        if method == "adalink"
        else "prompt tuning prepends learned prompt vectors to the encoder input, which "
        "T5ForConditionalGeneration has no place for"
      )
      + ". Pass --base-only to export the frozen base model, or serve the run with this "
      "codebase (scripts/eval.py)"
    )
  if method not in EXPORTABLE + NOT_REPRESENTABLE:
    raise SystemExit(f"{workdir}: unknown method {method!r}")
  _, variables, _, p, restored_step = trainer.restore_for_eval(config, workdir, which, step)
  to_numpy = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(jax.device_get(x)), tree)
  params = to_numpy(variables["params"])
  if method == "lora":
    params = to_numpy(
      lora_lib.merge_lora(params, to_numpy(variables["adapters"]), p.spec.rank, p.spec.alpha)
    )
  model_cfg = (
    trainer.text_config(p.model_config) if hasattr(trainer, "text_config") else p.model_config
  )
  return model_cfg, params, restored_step, config


def _run_vocab(config):
  """The run's SentencePiece file, if it trained with one."""
  from adalink.train import trainer

  if config.model.get("vocab", "byte") != "sentencepiece":
    return None
  path = config.model.get("vocab_path") or ""
  return trainer.resolve_path(path) if path else None


def _checkpoint_vocab(checkpoint: str):
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
      raise SystemExit(
        f"verify {path}: parameter names differ: missing {missing[:5]}, extra {extra[:5]}"
      )
    for k in sorted(want):
      if not np.array_equal(np.asarray(got[k]), np.asarray(want[k], np.float32)):
        raise SystemExit(f"verify {path}: parameter {k} differs from the exported model")


def main(argv=None):
  args = parse_args(argv)
  _check_outputs(args)
  import numpy as np
  import ml_dtypes

  if args.workdir:
    if not os.path.isdir(args.workdir):
      raise SystemExit(f"--workdir {args.workdir!r}: no such directory")
    config, params, step, run_config = run_params(
      args.workdir, args.which, args.step, args.base_only
    )
    vocab_source, vocab = (
      ("--vocab", args.vocab)
      if args.vocab
      else ("the run's model.vocab_path", _run_vocab(run_config))
    )
  else:
    from adalink import convert
    from adalink.models import t5

    size = t5.get_config(args.size) if args.size else None
    config, params = convert.load_checkpoint(args.checkpoint, config=size)
    step = 0
    vocab_source, vocab = (
      ("--vocab", args.vocab)
      if args.vocab
      else (f"{SPIECE} beside --checkpoint", _checkpoint_vocab(args.checkpoint))
    )
  if config.separate_encoder_embedding:
    raise SystemExit(
      "the model reads its encoder inputs from a separate table, which a "
      "Hugging Face T5 directory cannot hold"
    )
  if vocab:
    _check_vocab(vocab, config.vocab_size, vocab_source)

  if args.dtype == "bfloat16":
    # What a bfloat16 file holds; --verify compares against this rounding.
    import jax

    params = jax.tree_util.tree_map(
      lambda x: np.asarray(x, np.float32).astype(ml_dtypes.bfloat16).astype(np.float32), params
    )
  if args.hf:
    write_hf(config, params, args.hf, vocab, args.dtype)
    print(
      f"wrote Hugging Face T5 directory {args.hf}"
      + (
        f" (with {SPIECE} from {vocab})"
        if vocab
        else " (no spiece.model: the model uses no SentencePiece vocabulary; pass --vocab)"
      )
    )
  if args.t5x:
    write_t5x(config, params, args.t5x, step, args.dtype)
    print(f"wrote T5X checkpoint {args.t5x} (step {step})")
  if args.verify:
    verify(config, params, args.hf, args.t5x)
    print("verified: every parameter reads back equal")
  return {"config": config, "params": params, "step": step, "vocab": vocab}


if __name__ == "__main__":
  main()
