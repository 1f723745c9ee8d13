"""Use what was trained: a run (or an adapter file on its base) as a model that decodes text.

  trained = from_run(workdir, which="best")              # a run directory's checkpoint
  trained = from_adapter(adapter_dir, checkpoint=BASE)   # an adapter file on a base checkpoint
  texts = decode(trained, ["sst2 sentence: a fine film"], tasks="sst2")
  export_adapter(workdir, out_dir)                       # the run's adapter as files

A run decodes with its own evaluation settings (input length, batch size, decoding method and
length), so `decode` on a validation set's inputs gives exactly the predictions `eval.py` scored.
The model is served in its serving form (`adalink.peft.serving`): AdaLink folded into the
vocabulary tables unless `fold=False`, LoRA merged, prompt tuning and placement as trained.
"""

from __future__ import annotations

import dataclasses
import os
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from adalink.peft import adapter_file

DECODE_DEFAULTS = dict(max_decode_len=64, method="greedy", beam_size=4, alpha=0.6, batch_size=8)


@dataclasses.dataclass
class Trained:
  """A trained text model ready to decode."""

  model: Any  # the PeftT5 wrapper
  variables: Dict[str, Any]
  vocabulary: Any  # seqio vocabulary
  tasks: Dict[str, int]  # task name -> id of the tasks it was trained on (empty: not known)
  settings: Dict[str, Any]  # decoding defaults: see DECODE_DEFAULTS, plus inputs_length
  source: str

  @property
  def num_tasks(self) -> int:
    return int(getattr(self.model.spec, "num_tasks", 1))


def _vocabulary_record(config) -> Dict[str, Any]:
  from adalink import config_fields as cf

  kind = cf.require(config, "model.vocab")
  record = {"kind": kind, "extra_ids": int(cf.require(config, "model.vocab_extra_ids") or 0)}
  if kind == "sentencepiece":
    path = cf.resolve_path(cf.require(config, "model.vocab_path"))
    record.update(file=os.path.basename(path), fingerprint=adapter_file.fingerprint_file(path))
  else:
    record["fingerprint"] = f"{kind}:{record['extra_ids']}"
  return record


def _base_record(config, plan, params) -> Dict[str, Any]:
  from adalink import config_fields as cf

  if plan.checkpoint is None:
    source = {"init": "random", "seed": int(cf.require(config, "model.init_seed"))}
  else:
    source = {"init": "checkpoint", "path": os.path.abspath(plan.checkpoint)}
  return {
    "kind": plan.model_family.name,
    "architecture": adapter_file.architecture(plan.model_config),
    "fingerprint": adapter_file.fingerprint_arrays(params),
    "source": source,
  }


def _restore_run(workdir: str, which: str, step: Optional[int]):
  from adalink.train import trainer

  config = trainer.load_run_config(workdir)
  kind = config.model.get("kind", "t5")
  if kind != "t5":
    raise ValueError(
      f"{workdir}: model.kind is {kind!r}; decoding free text and adapter files serve text T5 "
      f"runs (evaluate this run with scripts/eval.py)"
    )
  model, variables, _, plan, restored = trainer.restore_for_eval(
    config, workdir, which, step, with_data=False
  )
  return config, model, variables, plan, restored


def _run_vocabulary(config, model_config):
  from adalink.data.families import base as data_base

  return data_base.vocabulary(config, data_base.ModelFacts(model_config.vocab_size))


def run_decoding(config) -> Dict[str, Any]:
  """How a run decodes in its evaluation: input length, batch size, method and length."""
  from adalink import config_fields as cf

  return dict(
    max_decode_len=cf.positive_int(config, "eval.max_decode_len"),
    method=cf.require(config, "eval.decode"),
    beam_size=int(cf.require(config, "eval.beam_size")),
    alpha=float(cf.require(config, "eval.alpha")),
    batch_size=cf.positive_int(config, "eval.batch_size"),
    inputs_length=cf.positive_int(config, "data.inputs_length"),
  )


def from_run(workdir: str, which: str = "latest", step: Optional[int] = None) -> Trained:
  """A run directory's checkpoint (`which` 'latest' or 'best', or a given `step`)."""
  config, model, variables, plan, restored = _restore_run(workdir, which, step)
  return Trained(
    model,
    variables,
    _run_vocabulary(config, plan.model_config),
    plan.data_family.task_ids(config),
    run_decoding(config),
    f"{os.path.abspath(workdir)} ({which} step {restored})",
  )


def export_adapter(
  workdir: str,
  out_dir: str,
  which: str = "latest",
  step: Optional[int] = None,
  overwrite: bool = False,
) -> Dict[str, Any]:
  """Writes the run's adapter (and, for AdaLink with a linear activation, the folded encoder
  tables) into `out_dir`; returns what was written."""
  from adalink.models import layer_stack
  from adalink.peft import methods, serving

  config, model, variables, plan, restored = _restore_run(workdir, which, step)
  spec = model.spec
  if spec.name == "ft":
    raise ValueError(
      f"{workdir}: method 'ft' trains every weight, so it has no adapter file; export the model "
      f"as a checkpoint (scripts/export.py --format hf or t5x)"
    )
  # Files hold unrolled layers (`layers_N`), whichever layout the run trained with.
  trainable, frozen = map(layer_stack.unstack_layers, methods.split_variables(spec, variables))
  adapter = adapter_file.AdapterFile(
    method=config.method.to_dict(),
    tensors=adapter_file.flatten(trainable),
    base=_base_record(config, plan, frozen["params"]),
    vocabulary=_vocabulary_record(config),
    tasks=plan.data_family.task_ids(config),
    num_tasks=int(getattr(spec, "num_tasks", 1)),
    decoding=run_decoding(config),
  )
  adapter_file.save(adapter, out_dir, overwrite=overwrite)
  written = {
    "adapter": os.path.join(out_dir, adapter_file.TENSORS_FILE),
    "config": os.path.join(out_dir, adapter_file.CONFIG_FILE),
    "step": restored,
    "tensors": len(adapter.tensors),
    "adapter_bytes": int(sum(v.nbytes for v in adapter.tensors.values())),
  }
  if serving.can_fold(spec)[0]:
    written["folded"] = write_folded_tables(
      serving.folded_tables(variables["params"], variables["adapters"], spec.activation),
      out_dir,
      overwrite,
    )
  return written


FOLDED_FILE = "folded_encoder_embedding.safetensors"
FOLDED_KEY = "encoder_token_embedder/embedding"


def write_folded_tables(tables, out_dir: str, overwrite: bool = False) -> str:
  """The folded encoder tables [tasks, vocab, d] as a safetensors file under `FOLDED_KEY` (one
  task: [vocab, d], exactly the `encoder_token_embedder` of a T5 built with
  `separate_encoder_embedding=True`)."""
  from safetensors.numpy import save_file

  path = os.path.join(out_dir, FOLDED_FILE)
  if os.path.exists(path) and not overwrite:
    raise FileExistsError(f"{path} exists; choose another directory or pass overwrite")
  tables = np.asarray(tables, np.float32)
  save_file({FOLDED_KEY: tables[0] if tables.shape[0] == 1 else tables}, path + ".tmp")
  os.replace(path + ".tmp", path)
  return path


def read_folded_table(path: str, task: int = 0) -> np.ndarray:
  """One task's folded encoder table [vocab, d] from `write_folded_tables`' file."""
  from safetensors.numpy import load_file

  table = load_file(path)[FOLDED_KEY]
  if table.ndim == 3:
    if not 0 <= task < table.shape[0]:
      raise ValueError(f"{path}: task {task} out of range (the file holds {table.shape[0]})")
    table = table[task]
  return table


def _base_params(adapter, checkpoint: Optional[str]):
  """(model config, params) of the base an adapter goes onto: `checkpoint`, else the base it
  records (its checkpoint path, or its random seed)."""
  import jax

  from adalink.models import t5

  arch = adapter.base.get("architecture", {})
  config = t5.T5Config.from_dict({**arch, "dropout_rate": 0.0})
  source = adapter.base.get("source", {})
  if checkpoint is None and source.get("init") == "random":
    return config, t5.init_params(config, jax.random.PRNGKey(int(source["seed"])))
  checkpoint = checkpoint or source.get("path")
  if not checkpoint or not os.path.exists(checkpoint):
    raise FileNotFoundError(
      f"adapter {adapter.source}: its base {checkpoint!r} is not here; pass --checkpoint BASE"
    )
  from adalink import convert

  loaded_config, params = convert.load_checkpoint(checkpoint, config=config)
  return loaded_config.replace(dropout_rate=0.0), params


def from_adapter(
  directory: str,
  checkpoint: Optional[str] = None,
  vocab: Optional[str] = None,
  allow_different_base: bool = False,
  settings: Optional[Dict[str, Any]] = None,
) -> Trained:
  """An adapter directory loaded onto its base (`checkpoint`, or the base it records), every key,
  shape and dtype and the base's architecture and fingerprint checked (see `adapter_file`)."""
  import jax
  import jax.numpy as jnp

  from adalink.data.pipeline import vocab as vocab_lib
  from adalink.experiments import inference
  from adalink.peft import methods

  adapter = adapter_file.load(directory)
  config, params = _base_params(adapter, checkpoint)
  spec = methods.spec_from_config(
    adapter.method, config.d_model, methods.TEXT_STREAMS, num_tasks=adapter.num_tasks
  )
  import flax.linen as nn

  model = methods.build_model(config, spec)
  expected, _ = methods.split_variables(spec, nn.unbox(methods.abstract_variables(model)))
  vocab_record = adapter.vocabulary
  vocab_path, vocab_fingerprint = None, vocab_record.get("fingerprint")
  if vocab_record.get("kind") == "sentencepiece":
    base_dir = checkpoint or adapter.base.get("source", {}).get("path") or directory
    vocab_path = inference.find_vocab(base_dir, vocab)
    vocab_fingerprint = adapter_file.fingerprint_file(vocab_path)
  adapter_file.check_fits(
    adapter,
    expected,
    "t5",
    adapter_file.architecture(config),
    adapter_file.fingerprint_arrays(params),
    vocab_fingerprint,
    allow_different_base,
  )
  trained = jax.tree_util.tree_map(jnp.asarray, adapter.tree())
  variables = methods.merge_variables(trained, {"params": params})
  vocabulary = vocab_lib.get_vocabulary(
    vocab_record["kind"], vocab_path, extra_ids=int(vocab_record.get("extra_ids", 0))
  )
  return Trained(
    model,
    variables,
    vocabulary,
    adapter.tasks,
    {**DECODE_DEFAULTS, **adapter.decoding, **(settings or {})},
    adapter.source,
  )


def _task_ids(trained: Trained, tasks, n: int) -> Optional[np.ndarray]:
  names = [tasks] * n if tasks is None or isinstance(tasks, str) else list(tasks)
  if len(names) != n:
    raise ValueError(f"{len(names)} task names for {n} inputs")
  for name in set(names) - {None}:
    if trained.tasks and name not in trained.tasks:
      raise ValueError(f"--task {name!r}: {trained.source} was trained on {sorted(trained.tasks)}")
  if trained.num_tasks == 1:
    return None
  ids = []
  for name in names:
    if name is None:
      raise ValueError(
        f"{trained.source} has one adapter per task ({sorted(trained.tasks)}): choose with --task"
      )
    if name not in trained.tasks:
      raise ValueError(f"--task {name!r}: {trained.source} was trained on {sorted(trained.tasks)}")
    ids.append(trained.tasks[name])
  return np.asarray(ids, np.int32)


def tokenize(trained: Trained, texts: Sequence[str], length: Optional[int] = None) -> np.ndarray:
  """[n, length] ids: each text's tokens cut to length - 1, then EOS (as the data pipeline does);
  `length` defaults to the run's input length, else the longest row."""
  eos = trained.model.config.eos_token_id
  limit = length or trained.settings.get("inputs_length") or 1 << 30
  rows = [list(trained.vocabulary.encode(t))[: limit - 1] + [eos] for t in texts]
  width = length or trained.settings.get("inputs_length") or max(len(r) for r in rows)
  tokens = np.zeros((len(rows), width), np.int32)
  for i, row in enumerate(rows):
    tokens[i, : len(row)] = row
  return tokens


def decode(
  trained: Trained,
  texts: Sequence[str],
  tasks: Union[None, str, Sequence[str]] = None,
  fold: Union[bool, str] = "auto",
  **overrides,
) -> List[str]:
  """The decoded text of each input; `tasks` names each input's task (one name for all) for a
  per-task model. `overrides` change `trained.settings` (max_decode_len, method, ...)."""
  import jax.numpy as jnp

  from adalink.peft import serving
  from adalink.train import decoding

  settings = {**trained.settings, **{k: v for k, v in overrides.items() if v is not None}}
  form = serving.serving_form(trained.model, trained.variables, fold)
  task_ids = _task_ids(trained, tasks, len(texts))
  tokens = tokenize(trained, texts)
  size = int(settings["batch_size"])
  eos = trained.model.config.eos_token_id
  out = []
  for start in range(0, len(texts), size):
    rows = tokens[start : start + size]
    batch = np.zeros((size, tokens.shape[1]), np.int32)
    batch[: len(rows)] = rows  # the last batch padded to the compiled size
    features = {}
    if task_ids is not None:
      ids = np.zeros((size,), np.int32)
      ids[: len(rows)] = task_ids[start : start + size]
      features["task_id"] = jnp.asarray(ids)
    ids_out = decoding.decode(
      form.module,
      form.variables,
      jnp.asarray(batch),
      int(settings["max_decode_len"]),
      method=settings["method"],
      beam_size=int(settings["beam_size"]),
      alpha=float(settings["alpha"]),
      eos_id=eos,
      **features,
    )
    rows_out = decoding.trim_after_eos(np.asarray(ids_out), eos)[: len(rows)]
    out.extend(trained.vocabulary.decode(r) for r in rows_out)
  return out


def decode_request(
  input: Sequence[str],
  run: Optional[str] = None,
  adapter: Optional[str] = None,
  checkpoint: Optional[str] = None,
  which: str = "latest",
  step: Optional[int] = None,
  task: Optional[str] = None,
  unfolded: bool = False,
  allow_different_base: bool = False,
  vocab: Optional[str] = None,
  max_decode_len: Optional[int] = None,
  beam: Optional[int] = None,
  alpha: Optional[float] = None,
  **unused,
) -> List[str]:
  """What `scripts/infer.py --run / --adapter` asks for: the decoded text of each input."""
  if run:
    trained = from_run(run, which, step)
  else:
    trained = from_adapter(adapter, checkpoint, vocab, allow_different_base)
  method = None if beam is None else ("greedy" if beam == 1 else "beam")
  return decode(
    trained,
    input,
    tasks=task,
    fold=False if unfolded else "auto",
    max_decode_len=max_decode_len,
    method=method,
    beam_size=beam,
    alpha=alpha,
  )
