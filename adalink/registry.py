"""Name -> object tables through which the code grows by adding a module.

A method, a data family or a model family is one module that registers itself here under the name
a config uses (`method.name`, `data.kind`, `model.kind`); the trainer looks the name up and never
branches on it. Registration happens at import time of the registering module, so a test file or a
user's own module can add an entry without editing the library.
"""

from __future__ import annotations

from typing import Callable, Dict, Generic, Iterator, Optional, TypeVar

T = TypeVar("T")


class Registry(Generic[T]):
  """A table of named entries of one kind, e.g. `Registry("method", field="method.name")`.

  `field` is the config field whose value is looked up, so an unknown name is reported against
  the field a user wrote.
  """

  def __init__(self, kind: str, field: Optional[str] = None):
    self.kind = kind
    self.field = field
    self._entries: Dict[str, T] = {}

  def register(self, name: str, entry: Optional[T] = None, *, replace: bool = False):
    """Adds `entry` under `name`; used bare (`register(name, obj)`) or as a decorator."""

    def add(obj: T) -> T:
      if not isinstance(name, str) or not name:
        raise ValueError(f"{self.kind} registry: a name must be a non-empty string, got {name!r}")
      if name in self._entries and not replace and self._entries[name] is not obj:
        raise ValueError(
          f"{self.kind} {name!r} is already registered ({self._entries[name]!r}); "
          f"pass replace=True to override it"
        )
      self._entries[name] = obj
      return obj

    return add if entry is None else add(entry)

  def unregister(self, name: str) -> None:
    self._entries.pop(name, None)

  def get(self, name: str) -> T:
    if name not in self._entries:
      where = f"config.{self.field}" if self.field else f"{self.kind} name"
      raise ValueError(f"{where}: unknown {self.kind} {name!r}; known: {sorted(self._entries)}")
    return self._entries[name]

  def names(self) -> tuple:
    return tuple(sorted(self._entries))

  def __contains__(self, name) -> bool:
    return name in self._entries

  def __iter__(self) -> Iterator[str]:
    return iter(sorted(self._entries))


def lazy(factory: Callable[[], T]) -> Callable[[], T]:
  """Defers building an entry (e.g. one that imports TensorFlow) until it is first used."""
  cache = []

  def get() -> T:
    if not cache:
      cache.append(factory())
    return cache[0]

  return get
