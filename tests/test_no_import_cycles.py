"""No module of the package imports, directly or through others, a module that imports it back.

import-linter's `acyclic_siblings` contract (`.importlinter`) checks sibling packages; this test
checks every module, including a package's `__init__` against its own submodules (a registry
defined in a package's `__init__` that its submodules import back is such a cycle)."""

import sys

import grimp


def _cycles(edges):
  """Strongly connected components of more than one module (Tarjan's algorithm)."""
  index, low, stack, on_stack, found = {}, {}, [], set(), []

  def visit(v):
    index[v] = low[v] = len(index)
    stack.append(v)
    on_stack.add(v)
    for w in edges[v]:
      if w not in index:
        visit(w)
        low[v] = min(low[v], low[w])
      elif w in on_stack:
        low[v] = min(low[v], index[w])
    if low[v] == index[v]:
      component = []
      while True:
        w = stack.pop()
        on_stack.discard(w)
        component.append(w)
        if w == v:
          break
      if len(component) > 1:
        found.append(sorted(component))

  for v in sorted(edges):
    if v not in index:
      visit(v)
  return found


def test_cycle_finder_sees_a_package_and_its_submodule():
  edges = {"p": ["p.a"], "p.a": ["p", "q"], "q": []}
  assert _cycles(edges) == [["p", "p.a"]]


def test_the_package_has_no_import_cycle():
  sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
  graph = grimp.build_graph("adalink")
  modules = sorted(m for m in graph.modules if m.split(".")[0] == "adalink")
  edges = {
    m: sorted(d for d in graph.find_modules_directly_imported_by(m) if d.split(".")[0] == "adalink")
    for m in modules
  }
  assert len(modules) > 100
  assert _cycles(edges) == []
