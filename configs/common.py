"""What the config files share: the `file.py:variant,key=value` argument parser and the builders of
the sections a training config is made of (model, method, optimizer, schedule, train, eval,
sharding).

A config file reads like the experiment: it parses its argument with `parse_arg`, assembles its
sections from the builders here (overriding what its experiment changes) and returns one
`ConfigDict`. The defaults every run relies on live in these builders, so the trainer finds every
field it reads in the config.
"""

from __future__ import annotations

import dataclasses
import os
import re
from typing import Any, Callable, Dict, Mapping, Optional, Sequence, Union

import ml_collections

_HERE = os.path.dirname(os.path.abspath(__file__))
# The read-only data and model folder beside the checkout (datasets, checkpoints, vocabularies).
SHARED = os.path.join(_HERE, "..", "..", "shared")

# ----------------------------------------------------------------------------- argument parsing

Variant = Union[str, "re.Pattern[str]"]
OptionParser = Callable[[str], Any]


@dataclasses.dataclass(frozen=True)
class Arg:
  """A parsed `variant,key=value,...` argument: the variant, the regex match when the variant was
  accepted by a pattern (None for a plain name), and the options given (parsed, typed)."""

  variant: str
  match: Optional["re.Match[str]"]
  options: Mapping[str, Any]
  arg: str = ""
  config_file: str = ""
  usage: str = ""

  def get(self, name: str, default: Any = None) -> Any:
    return self.options.get(name, default)

  def __contains__(self, name: str) -> bool:
    return name in self.options

  def refuse(self, why: str):
    """Raises the config file's ValueError for a combination its grammar cannot express."""
    raise ValueError(_message(self.config_file, why, self.arg, self.usage))


def _message(config_file: str, why: str, arg, usage: str) -> str:
  return f"{config_file}: {why} (in {arg!r}). {usage}"


def positive_int(text: str) -> int:
  """Option parser: a positive integer."""
  if not text.isdigit() or int(text) <= 0:
    raise ValueError(f"must be a positive integer, got {text!r}")
  return int(text)


positive_int.metavar = "N"


def one_of(*choices: str) -> OptionParser:
  """Option parser: one of `choices`."""

  def parse(text: str) -> str:
    if text not in choices:
      raise ValueError(f"must be one of {'|'.join(choices)}, got {text!r}")
    return text

  parse.metavar = "|".join(choices)
  return parse


def text(metavar: str = "VALUE") -> OptionParser:
  """Option parser: any non-empty string (checked later by whatever reads it)."""

  def parse(value: str) -> str:
    return value

  parse.metavar = metavar
  return parse


def joined(item: OptionParser, sep: str = "+") -> OptionParser:
  """Option parser: several `item`s separated by `sep` (e.g. task=rte+mrpc) -> a tuple."""

  def parse(value: str) -> tuple:
    items = tuple(item(v) for v in value.split(sep) if v)
    if not items:
      raise ValueError(f"names no item, got {value!r}")
    return items

  parse.metavar = f"{getattr(item, 'metavar', 'VALUE')}[{sep}...]"
  return parse


def parse_arg(
  arg: Optional[str],
  *,
  config_file: str,
  variants: Sequence[Variant],
  options: Optional[Mapping[str, OptionParser]] = None,
  default: Optional[str] = None,
  variants_help: Optional[str] = None,
) -> Arg:
  """Parses a config argument `variant[,key=value...]` (what follows `file.py:` on the command
  line).

  `variants` holds the accepted variant names and/or compiled patterns (a pattern must match the
  whole variant); `options` maps each accepted key to a parser from text to its value (`int`,
  `positive_int`, `one_of(...)`, `text()`, `joined(...)`), which raises ValueError for a bad
  value. An empty argument takes `default` (refused when there is none). Unknown variants,
  unknown or repeated keys, `key` without `=value`, empty values and values their parser refuses
  raise ValueError naming `config_file`, the bad token and what is accepted.
  """
  options = dict(options or {})
  names = variants_help or ", ".join(
    v if isinstance(v, str) else f"/{v.pattern}/" for v in variants
  )
  opts = ", ".join(f"{k}={getattr(p, 'metavar', 'VALUE')}" for k, p in options.items())
  usage = f"Variants: {names}; " + (f"options after a comma: {opts}" if opts else "no options")

  def refuse(why: str):
    raise ValueError(_message(config_file, why, arg, usage))

  parts = [p for p in (arg or "").split(",") if p]
  if not parts:
    if default is None:
      refuse("no variant given")
    parts = [default]
  variant, match = parts[0], None
  if "=" in variant:
    refuse(f"the variant comes first, got option {variant!r}")
  for accepted in variants:
    if isinstance(accepted, str):
      if variant == accepted:
        break
    else:
      match = accepted.fullmatch(variant)
      if match:
        break
  else:
    refuse(f"unknown variant {variant!r}")
  parsed: Dict[str, Any] = {}
  for token in parts[1:]:
    key, sep, value = token.partition("=")
    if not sep:
      refuse(f"option {token!r} is not key=value")
    if key not in options:
      refuse(f"unknown option {key!r}")
    if key in parsed:
      refuse(f"option {key!r} given twice")
    if not value:
      refuse(f"option {key!r} has an empty value")
    try:
      parsed[key] = options[key](value)
      continue
    except ValueError as e:
      why = f"option {key}: {e}"
    refuse(why)  # outside the handler: one error, not a chain of two
  return Arg(variant, match, parsed, arg or "", config_file, usage)


# ----------------------------------------------------------------------------- sections


def section(**fields) -> ml_collections.ConfigDict:
  return ml_collections.ConfigDict(fields)


def t5_model(size: str = "xxl", **overrides) -> ml_collections.ConfigDict:
  """A T5 1.1 / FLAN-T5 model section: a pretrained checkpoint by default."""
  return section(
    **{
      "kind": "t5",
      "size": size,
      "init": "checkpoint",  # or "random" (a seeded random base, for smoke runs)
      "init_seed": 0,
      "checkpoint": "",  # Hugging Face T5 dir or T5X checkpoint
      "vocab": "sentencepiece",  # or "byte"
      "vocab_path": "",  # spiece.model of the checkpoint
      "vocab_extra_ids": 0,  # sentinel ids added on top of the vocabulary
      "dropout_rate": 0.1,
      "dtype": "bfloat16",
      "scan_layers": False,  # True: layers under nn.scan (compile time independent of depth)
      "remat": "none",  # what the backward pass recomputes: none, full, dots, dots_no_batch
      **overrides,
    }
  )


def pali_model(
  size: str = "tiny", vit_size: str = "tiny", **overrides
) -> ml_collections.ConfigDict:
  """A PaLI-style model section: a ViT image encoder (random or `vit_checkpoint`) feeding T5."""
  return t5_model(
    size,
    **{
      "kind": "pali",
      "vit_size": vit_size,
      "image_size": 224,
      "vit_checkpoint": "",  # HF ViT/SigLIP dir or big_vision .npz; "" = random (seeded)
      **overrides,
    },
  )


LORA_TARGETS = ("query", "key", "value", "out", "wi", "wi_0", "wi_1", "wo")


def adalink_method(
  rank: int, streams=("text",), activation: str = "linear", dropout_rate: float = 0.1, **fields
) -> ml_collections.ConfigDict:
  """AdaLink: a rank-`rank` adapter on the input embeddings of each stream."""
  return section(
    name="adalink",
    rank=rank,
    streams=tuple(streams),
    activation=activation,
    dropout_rate=dropout_rate,
    **fields,
  )


def lora_method(rank: int, **fields) -> ml_collections.ConfigDict:
  """LoRA on the encoder's dense layers (alpha = rank: a scale of 1)."""
  return section(
    **{
      "name": "lora",
      "rank": rank,
      "targets": LORA_TARGETS,
      "alpha": float(rank),
      "lora_decoder": False,
      "dropout_rate": 0.0,
      **fields,
    }
  )


def pt_method(
  num_prompts: int = 64, reparam_hidden: int = 512, **fields
) -> ml_collections.ConfigDict:
  """Prompt tuning with a residual reparameterisation MLP, prompts initialised from the vocab."""
  return section(
    **{
      "name": "pt",
      "num_prompts": num_prompts,
      "reparam_hidden": reparam_hidden,
      "prompt_init": "vocab",
      "dropout_rate": 0.05,
      **fields,
    }
  )


def ft_method() -> ml_collections.ConfigDict:
  return section(name="ft")


METHODS = ("adalink", "lora", "pt", "ft")


def method_section(name: str, rank: int = 0) -> ml_collections.ConfigDict:
  """The text model's section of method `name` (AdaLink, LoRA, PT, FT) at `rank` (ignored by PT
  and FT)."""
  if name == "adalink":
    return adalink_method(rank, per_task=False)
  if name == "lora":
    return lora_method(rank)
  if name == "pt":
    return pt_method()
  if name == "ft":
    return ft_method()
  raise ValueError(f"method_section: unknown method {name!r}; methods: {METHODS}")


def optimizer_section(**overrides) -> ml_collections.ConfigDict:
  """Adafactor (T5's optimizer) without clipping or accumulation."""
  return section(
    **{
      "name": "adafactor",
      "decay_rate": 0.8,
      # Adafactor only: scale each update by the parameter's RMS (T5's pretraining setting).
      "multiply_by_parameter_scale": False,
      "grad_clip_norm": 0.0,
      "grad_accum_steps": 1,
      **overrides,
    }
  )


def schedule_section(peak_lr: float, warmup_steps: int) -> ml_collections.ConfigDict:
  """Linear warmup to `peak_lr`, then reciprocal square-root decay."""
  return section(peak_lr=peak_lr, warmup_steps=warmup_steps)


def train_section(
  num_steps: int, log_every: int, checkpoint_every: int, **overrides
) -> ml_collections.ConfigDict:
  return section(
    **{
      "num_steps": num_steps,
      "log_every": log_every,
      "checkpoint_every": checkpoint_every,
      "keep_checkpoints": 2,
      "label_smoothing": 0.0,
      "quiet": False,
      # Multi-host: how often processes agree whether a SIGTERM asked the job to stop (an
      # all-gather of one integer); single-process runs check after every step regardless.
      "preemption_check_every": 1,
      **overrides,
    }
  )


def eval_section(
  every_steps: int, batch_size: int, max_decode_len: int, **overrides
) -> ml_collections.ConfigDict:
  """Evaluation every `every_steps` (and at the end; 0 = only at the end), decoding greedily;
  the checkpoint with the best `best_metric` is kept as well."""
  return section(
    **{
      "enabled": True,
      "at_start": False,  # also evaluate the untrained starting point
      "every_steps": every_steps,
      "split": "validation",
      "batch_size": batch_size,
      "max_examples": 0,  # 0 = the whole split
      "decode": "greedy",
      "beam_size": 4,
      "alpha": 0.6,
      "max_decode_len": max_decode_len,
      "best_metric": "average",
      "best_mode": "max",
      **overrides,
    }
  )


def sharding_section(mesh=(-1, 1), distributed="auto") -> ml_collections.ConfigDict:
  """Mesh (data, model); -1 takes the remaining devices. `distributed`: initialise
  jax.distributed when the environment asks ("auto"), always (True) or never (False)."""
  return section(mesh=tuple(mesh), distributed=distributed)


def training_config(
  *, model, method, data, optimizer, schedule, train, eval, sharding=None, seed: int = 0
) -> ml_collections.ConfigDict:
  """The config `scripts/train.py` runs, from its sections."""
  return section(
    seed=seed,
    model=model,
    method=method,
    data=data,
    optimizer=optimizer,
    schedule=schedule,
    train=train,
    eval=eval,
    sharding=sharding if sharding is not None else sharding_section(),
  )
