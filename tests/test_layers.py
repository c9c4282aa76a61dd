"""The layout's rules (docs/ARCHITECTURE.md, "Layers" and "Rules"), checked on the source with
``ast``: every module under ``schema/``, ``db/`` and ``cli/``, and ``server.py``.

- No module is over ``MAX_LINES`` lines.
- ``db/`` never imports ``schema``.
- Shared machinery (everything under ``schema/`` but ``schema/domains/`` and the composition
  root, ``schema/__init__.py``) never imports a domain, not even inside a function.
- A domain imports another domain's modules only inside ``if TYPE_CHECKING:`` blocks, for
  Strawberry's lazy types (``Annotated["Post", strawberry.lazy("schema.domains.posts.types")]``).
- The layer folders (``LAYERS``) import each other without a cycle. An import runs when its
  module is imported or when its function is called, so both count; one under
  ``if TYPE_CHECKING:`` never runs (it exists for annotations alone) and does not.

Each check returns its violations as messages naming the file and line; the ``test_a_...``
tests at the end feed the checks small made-up sources, so that a check that could no longer
fail would fail there.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
MAX_LINES = 300
#: Modules allowed over ``MAX_LINES``: none.
LONG_MODULES_ALLOWED: frozenset[str] = frozenset()
#: The folders under ``schema/`` that hold one layer each.
LAYERS = (
    "transport", "relay", "reads", "writes", "engine", "live", "auth", "telemetry", "domains"
)  # fmt: skip
COMPOSITION_ROOT = "schema/__init__.py"


@dataclass(frozen=True, slots=True)
class Import:
    """One import statement at ``path``:``line``: ``import module`` (no ``names``) or
    ``from module import names``; ``type_checking`` when it stands under
    ``if TYPE_CHECKING:``."""

    path: str
    line: int
    module: str
    names: tuple[str, ...]
    type_checking: bool

    @property
    def where(self) -> str:
        return f"{self.path}:{self.line}"

    @property
    def targets(self) -> list[str]:
        """The dotted names it may import: for ``from a import b``, ``a`` and ``a.b`` (``b``
        may be a module)."""
        return [self.module, *(f"{self.module}.{name}" for name in self.names)]

    def __str__(self) -> str:
        if not self.names:
            return f"{self.where} imports {self.module}"
        return f"{self.where} imports {', '.join(self.names)} from {self.module}"


@cache
def sources() -> dict[str, str]:
    """The checked modules' sources by path relative to the repository."""
    folders = ("schema", "db", "cli")
    files = [path for folder in folders for path in sorted((ROOT / folder).rglob("*.py"))]
    files.append(ROOT / "server.py")
    return {path.relative_to(ROOT).as_posix(): path.read_text() for path in files}


def module_name(path: str) -> str:
    """``schema/reads/fetch.py`` -> ``schema.reads.fetch``; a package's ``__init__.py`` is the
    package."""
    parts = path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imports(path: str, source: str) -> list[Import]:
    """Every import statement in ``source`` (the module at ``path``), wherever it stands:
    at module level, in a function, under ``if TYPE_CHECKING:``."""
    found: list[Import] = []
    package = module_name(path).split(".")
    if not path.endswith("__init__.py"):
        package = package[:-1]

    def visit(node: ast.AST, type_checking: bool) -> None:
        if isinstance(node, ast.Import):
            for alias in node.names:
                found.append(Import(path, node.lineno, alias.name, (), type_checking))
            return
        if isinstance(node, ast.ImportFrom):
            # A relative import names its module from this one's package.
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            names = tuple(alias.name for alias in node.names)
            found.append(Import(path, node.lineno, module, names, type_checking))
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for child in node.body:
                visit(child, True)
            for child in node.orelse:
                visit(child, type_checking)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, type_checking)

    visit(ast.parse(source, path), False)
    return found


def _domain_of(name: str) -> str | None:
    """The domain a module or dotted path belongs to (``schema.domains.posts.types`` ->
    ``posts``), or ``None``."""
    parts = name.split(".")
    return parts[2] if len(parts) > 2 and parts[:2] == ["schema", "domains"] else None


def _layer_of(name: str) -> str | None:
    parts = name.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "schema" and parts[1] in LAYERS else None


def long_modules(files: Mapping[str, str], allowed: frozenset[str] = frozenset()) -> list[str]:
    """The modules over ``MAX_LINES`` lines, but the ``allowed``."""
    return [
        f"{path} has {lines} lines, over the limit of {MAX_LINES}: split it along its seams "
        "into modules of one purpose each"
        for path, source in files.items()
        if (lines := len(source.splitlines())) > MAX_LINES and path not in allowed
    ]


def all_imports(files: Mapping[str, str]) -> Iterator[Import]:
    for path, source in files.items():
        yield from imports(path, source)


def _within(name: str, package: str) -> bool:
    return name == package or name.startswith(f"{package}.")


def data_layer_imports_of_schema(files: Mapping[str, str]) -> list[str]:
    """Imports of ``schema`` in ``db/``."""
    return [
        f"{found}: db/ never imports schema/"
        for found in all_imports(files)
        if found.path.startswith("db/") and _within(found.module, "schema")
    ]


def shared_imports_of_domains(files: Mapping[str, str]) -> list[str]:
    """Imports of a domain in the shared machinery."""
    return [
        f"{found}: shared machinery never imports a domain (move what it needs out of the "
        "domain, or have the domains register it)"
        for found in all_imports(files)
        if found.path.startswith("schema/")
        and not found.path.startswith("schema/domains/")
        and found.path != COMPOSITION_ROOT
        and _within(found.module, "schema.domains")
    ]


def domain_imports_at_run_time(files: Mapping[str, str]) -> list[str]:
    """Imports of another domain's modules in a domain, outside ``if TYPE_CHECKING:``."""
    return [
        f"{found} at run time: a domain refers to another only by Strawberry's lazy types, "
        "importing it under `if TYPE_CHECKING:`"
        for found in all_imports(files)
        if (domain := _domain_of(module_name(found.path))) is not None
        and not found.type_checking
        and any(_domain_of(target) not in (None, domain) for target in found.targets)
    ]


def layer_cycles(files: Mapping[str, str]) -> list[str]:
    """The cycles among the layer folders' run-time imports, one message each, naming an
    import that makes each step."""
    edges: dict[str, dict[str, Import]] = {}
    for found in all_imports(files):
        source = _layer_of(module_name(found.path))
        for target in {_layer_of(name) for name in found.targets}:
            if source and target and source != target and not found.type_checking:
                edges.setdefault(source, {}).setdefault(target, found)
    cycles: list[str] = []
    seen: set[frozenset[str]] = set()

    def walk(path: list[str]) -> None:
        for target in sorted(edges.get(path[-1], {})):
            if target == path[0]:
                if frozenset(path) not in seen:
                    seen.add(frozenset(path))
                    steps = [
                        f"{a} -> {b} ({edges[a][b]})"
                        for a, b in zip(path, [*path[1:], path[0]], strict=True)
                    ]
                    cycles.append("layers import each other in a cycle: " + "; ".join(steps))
            elif target not in path and target > path[0]:
                walk([*path, target])

    for layer in sorted(edges):
        walk([layer])
    return cycles


def _short_modules(files: Mapping[str, str]) -> list[str]:
    return long_modules(files, LONG_MODULES_ALLOWED)


@pytest.mark.parametrize(
    "check",
    [
        _short_modules,
        data_layer_imports_of_schema,
        shared_imports_of_domains,
        domain_imports_at_run_time,
        layer_cycles,
    ],
    ids=[
        "no module over the line limit",
        "the data layer never imports the schema",
        "shared machinery never imports a domain",
        "domains import each other only for lazy types",
        "the layers import each other without a cycle",
    ],
)
def test_the_source_keeps_the_rule(check: Callable[[Mapping[str, str]], list[str]]) -> None:
    violations = check(sources())
    assert not violations, "\n".join(violations)


# The checks themselves, on made-up sources: each must find what it is there to find.


def test_a_long_module_is_found_unless_allowed() -> None:
    files = {"schema/big.py": "x = 1\n" * (MAX_LINES + 1), "schema/small.py": "x = 1\n"}
    assert long_modules(files) == [
        f"schema/big.py has {MAX_LINES + 1} lines, over the limit of {MAX_LINES}: split it "
        "along its seams into modules of one purpose each"
    ]
    assert long_modules(files, frozenset({"schema/big.py"})) == []


def test_a_domain_imported_by_shared_machinery_is_found_even_inside_a_function() -> None:
    files = {
        "schema/reads/loaders.py": "def f():\n    from schema.domains.users.types import User\n",
        "schema/relay/node.py": "from schema.domains import posts\n",
        "schema/__init__.py": "from schema.domains.users.types import User\n",
        "schema/domains/users/types.py": "from schema.domains.users import mutations\n",
    }
    assert [message.split(": ")[0] for message in shared_imports_of_domains(files)] == [
        "schema/reads/loaders.py:2 imports User from schema.domains.users.types",
        "schema/relay/node.py:1 imports posts from schema.domains",
    ]


def test_a_domain_importing_another_at_run_time_is_found() -> None:
    files = {
        "schema/domains/posts/types.py": (
            "from typing import TYPE_CHECKING\n"
            "from schema.domains.posts.inputs import PostInput\n"  # its own domain: fine
            "if TYPE_CHECKING:\n"
            "    from schema.domains.users.types import User\n"  # for lazy types: fine
            "def author():\n"
            "    from schema.domains.users.types import load_users\n"
        ),
        "schema/domains/comments/types.py": "from schema.domains.tags import types\n",
    }
    found = domain_imports_at_run_time(files)
    assert [message.split(" at run time")[0] for message in found] == [
        "schema/domains/posts/types.py:6 imports load_users from schema.domains.users.types",
        "schema/domains/comments/types.py:1 imports types from schema.domains.tags",
    ]


def test_a_cycle_between_layers_is_found_and_a_type_only_import_is_not_one() -> None:
    files = {
        "schema/reads/loaders.py": "from schema.relay.pagination import Page\n",
        "schema/relay/listing.py": "def f():\n    from schema.reads import loaders\n",
        "schema/auth/viewer.py": "from schema.reads import loaders\n",
        "schema/reads/visibility.py": (
            "from typing import TYPE_CHECKING\n"
            "if TYPE_CHECKING:\n"
            "    from schema.auth.viewer import Viewer\n"
        ),
    }
    assert layer_cycles(files) == [
        "layers import each other in a cycle: "
        "reads -> relay (schema/reads/loaders.py:1 imports Page from schema.relay.pagination); "
        "relay -> reads (schema/relay/listing.py:2 imports loaders from schema.reads)"
    ]


def test_the_data_layer_importing_the_schema_is_found() -> None:
    files = {"db/models/post.py": "from schema.errors import BadUserInput\n"}
    assert data_layer_imports_of_schema(files) == [
        "db/models/post.py:1 imports BadUserInput from schema.errors: db/ never imports schema/"
    ]
