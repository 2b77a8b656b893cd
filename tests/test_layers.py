"""The layers talk through typed contracts: a static check of the imports and the URLs.

- the node agent (``rtkvm.agent``) imports neither the API nor the scheduler:
  it speaks to any control plane through ``rtkvm.agent.port`` and
  ``rtkvm.wire``;
- ``rtkvm.wire`` (the contract) imports no layer that uses it;
- no package imports another that imports it back (no cycles, local imports
  included);
- production code imports no test double (``*.fakes``, ``*.testing``,
  ``scheduler.fakehosts``) except the shipped test helpers themselves;
- no ``/v1`` path is written outside the clients (``rtkvm.wire.http``,
  ``*_client``) and the API's routing (its routes, the app, the body gate's
  per-route limits).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
DOUBLES = ("rtkvm.tune.fakes", "rtkvm.testing", "rtkvm.api.testing", "rtkvm.scheduler.fakehosts")
"""Test doubles shipped for tests and demos; only other doubles may import them."""
URL_OWNERS = ("rtkvm.wire.http", "rtkvm.wire.user_client", "rtkvm.wire.agent_client")


def _modules() -> dict[str, Path]:
    found = {}
    for path in SRC.rglob("*.py"):
        name = ".".join(path.relative_to(SRC).with_suffix("").parts)
        found[name.removesuffix(".__init__")] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> Iterator[str]:
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            yield node.module
            for alias in node.names:
                yield f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)


def _graph() -> dict[str, set[str]]:
    return {m: {i for i in _imports(p) if i in MODULES and i != m} for m, p in MODULES.items()}


def _package(module: str) -> str:
    return ".".join(module.split(".")[:2])


def _under(module: str, prefixes: tuple[str, ...]) -> bool:
    return any(module == p or module.startswith(f"{p}.") for p in prefixes)


def test_the_agent_imports_neither_the_api_nor_the_scheduler() -> None:
    crossing = [
        f"{m} imports {i}"
        for m, imports in _graph().items()
        if _under(m, ("rtkvm.agent",))
        for i in imports
        if _under(i, ("rtkvm.api", "rtkvm.scheduler"))
    ]
    assert crossing == []


def test_the_wire_contract_imports_no_layer_that_uses_it() -> None:
    users = ("rtkvm.api", "rtkvm.agent", "rtkvm.scheduler", "rtkvm.cli", "rtkvm.allinone")
    crossing = [
        f"{m} imports {i}"
        for m, imports in _graph().items()
        if _under(m, ("rtkvm.wire",))
        for i in imports
        if _under(i, users)
    ]
    assert crossing == []


def test_no_package_imports_one_that_imports_it_back() -> None:
    packages: dict[str, set[str]] = {}
    for m, imports in _graph().items():
        packages.setdefault(_package(m), set()).update(
            _package(i) for i in imports if _package(i) != _package(m)
        )
    cycles = []
    for start in packages:
        seen, todo = set(), list(packages[start])
        while todo:
            p = todo.pop()
            if p == start:
                cycles.append(start)
                break
            if p not in seen:
                seen.add(p)
                todo.extend(packages.get(p, ()))
    assert cycles == []


def test_production_code_imports_no_test_double() -> None:
    crossing = [
        f"{m} imports {i}"
        for m, imports in _graph().items()
        if not _under(m, DOUBLES)
        for i in imports
        if _under(i, DOUBLES)
    ]
    assert crossing == []


def test_api_paths_are_written_only_by_the_clients_and_the_routes() -> None:
    writers = []
    for m, path in MODULES.items():
        if _under(m, (*URL_OWNERS, "rtkvm.api.routes", "rtkvm.api.app", "rtkvm.api.guard")):
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            text = node.value if isinstance(node, ast.Constant) else None
            if isinstance(text, str) and ("/v1/" in text or text == "/v1"):
                writers.append(f"{m}:{node.lineno}")
    assert writers == []


def test_every_public_error_lives_in_the_one_exception_tree() -> None:
    """rtkvm.errors says it is the one tree: a public RtkvmError elsewhere is a second one."""
    elsewhere = []
    for m, path in MODULES.items():
        if m == "rtkvm.errors":
            continue
        for node in ast.walk(ast.parse(path.read_text("utf-8"))):
            if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
                bases = {b.id for b in node.bases if isinstance(b, ast.Name)}
                if any(b.endswith("Error") for b in bases) and node.name.endswith("Error"):
                    elsewhere.append(f"{m}.{node.name}")
    assert elsewhere == []
