"""Dotted config overrides (`{"train.num_steps": 3}`) applied the way the tests' runs need them."""


def apply_overrides(config, overrides: dict):
  """Sets each `section.field` (any depth) of `config` in place and returns it. Lists become
  tuples: overrides that went through JSON (the train driver's arguments) arrive as lists, and the
  configs hold sequences as tuples."""
  for dotted, value in overrides.items():
    node = config
    *parents, leaf = dotted.split(".")
    for name in parents:
      node = node[name]
    node[leaf] = tuple(value) if isinstance(value, list) else value
  return config
