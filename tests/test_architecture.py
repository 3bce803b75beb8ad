"""The house rules, read from the code itself (``ast`` and importlib, not text patterns):
imports run one way, no module reaches into another's privates, run files have one owner,
functions stay short, and the README's extending examples work as written."""

from __future__ import annotations

import ast
import importlib
import importlib.metadata
import importlib.util
from collections.abc import Iterator
from pathlib import Path

import pytest

import pluralign
import pluralign.judges as judges_package
import pluralign.methods as methods_package
from pluralign.judges import BACKENDS
from pluralign.methods.registry import METHODS
from pluralign.options import Options
from support import ROOT

SRC = ROOT / "src" / "pluralign"
README = (ROOT / "README.md").read_text()
MAX_FUNCTION_LINES = 80


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(), str(path))


def _is_type_checking(node: ast.If) -> bool:
    return isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def _module_level_imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """pluralign modules imported when this module is imported (not in functions, not for
    type checking only); ``from a import b`` counts ``a.b`` when ``b`` is a module."""
    out: set[str] = set()

    def visit(body: list[ast.stmt]) -> None:
        for node in body:
            if isinstance(node, ast.If) and not _is_type_checking(node):
                visit(node.body)
                visit(node.orelse)
            elif isinstance(node, ast.Try):
                visit(node.body)
            elif isinstance(node, ast.Import):
                out.update(a.name for a in node.names if a.name.startswith("pluralign"))
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    package = name if is_package else name.rsplit(".", 1)[0]
                    base = ".".join([*package.split(".")[: len(package.split(".")) - node.level + 1], base])
                if base.startswith("pluralign"):
                    out.add(base)
                    if _is_package(base):
                        out.update(f"{base}.{a.name}" for a in node.names if _is_module(f"{base}.{a.name}"))

    visit(tree.body)
    out.discard(name)
    return out


def _is_package(name: str) -> bool:
    spec = importlib.util.find_spec(name)
    return spec is not None and spec.submodule_search_locations is not None


def _is_module(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _graph() -> dict[str, set[str]]:
    graph = {}
    for name, path, tree in _modules():
        graph[name] = _module_level_imports(tree, name, path.name == "__init__.py")
    return graph


def test_module_imports_have_no_cycles():
    graph = _graph()
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def walk(node: str, stack: list[str]) -> None:
        state[node] = 1
        for dep in sorted(graph.get(node, ())):
            if dep not in graph:
                continue
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep] if dep in stack else [node, dep])
            elif dep not in state:
                walk(dep, [*stack, dep])
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            walk(node, [node])
    # a package's __init__ re-exporting its own submodules is not a cycle of design
    real = [c for c in cycles if not all(m.startswith(c[0] + ".") or m == c[0] for m in c[1:])]
    assert real == []


@pytest.mark.parametrize(
    ("layer", "must_not_import"),
    [
        ("pluralign.judges", ("pluralign.methods", "pluralign.server", "pluralign.cli", "pluralign.api")),
        ("pluralign.methods", ("pluralign.server", "pluralign.cli", "pluralign.evaluate")),
        ("pluralign.server", ("pluralign.cli",)),
        ("pluralign.options", ("pluralign.judges", "pluralign.methods", "pluralign.settings")),
    ],
)
def test_lower_layers_do_not_import_upper_ones(layer: str, must_not_import: tuple[str, ...]):
    offenders = [
        f"{name} imports {dep}"
        for name, deps in _graph().items()
        if name == layer or name.startswith(layer + ".")
        for dep in deps
        if dep.startswith(must_not_import)
    ]
    assert offenders == []


def test_no_module_reaches_into_another_modules_privates():
    offenders = []
    for name, _, tree in _modules():
        imported_modules: dict[str, str] = {}
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("pluralign"):
                for alias in node.names:
                    if alias.name.startswith("_") and not alias.name.startswith("__"):
                        offenders.append(f"{name}: from {node.module} import {alias.name}")
                    full = f"{node.module}.{alias.name}"
                    if _is_package(node.module or "") and _is_module(full):
                        imported_modules[alias.asname or alias.name] = full
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.startswith("pluralign"):
                        imported_modules[alias.asname or alias.name] = alias.name
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in imported_modules
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                offenders.append(f"{name}: {node.value.id}.{node.attr}")
    assert offenders == []


def test_run_folder_file_names_live_only_in_the_run_folder_owner():
    names = {"run.json", "results.json", "decisions.jsonl", "judgements.jsonl", "calls.jsonl", "input_output"}
    offenders = []
    for folder in (SRC, ROOT / "bench"):
        for path in folder.rglob("*.py"):
            if path == SRC / "runs.py":
                continue
            for node in ast.walk(ast.parse(path.read_text())):
                if isinstance(node, ast.Constant) and node.value in names:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.value}")
    assert offenders == []


def test_functions_are_short():
    long = []
    for name, _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{name}.{node.name}: {lines} lines")
    assert long == []


def test_the_version_is_read_from_the_package_metadata():
    assert pluralign.__version__ == importlib.metadata.version("pluralign")
    for name, _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "__version__" for t in node.targets
            ):
                assert isinstance(node.value, ast.Call) or node.value.value == "0.0.0", name  # type: ignore[attr-defined]


def test_every_component_module_registers_through_one_registry():
    for registry, package in ((METHODS, methods_package), (BACKENDS, judges_package)):
        specs = registry.all()
        assert specs, registry.kind
        for spec in specs.values():
            assert issubclass(spec.options, Options), spec.name
            assert spec.options.model_config.get("frozen") and spec.options.model_config.get("extra") == "forbid"
        modules = {importlib.import_module(f"{package.__name__}.{m}") for m in _submodules(package)}
        assert modules  # every module of the package was importable on its own


def _submodules(package: object) -> list[str]:
    import pkgutil

    return [m.name for m in pkgutil.iter_modules(package.__path__)]  # type: ignore[attr-defined]


# ---- the README's extending examples, run as written -----------------------------------------


def _readme_block(marker: str) -> str:
    section = README.split("## Extending", 1)[1].split("\n## ", 1)[0]
    for block in section.split("```python")[1:]:
        code = block.split("```", 1)[0]
        if marker in code:
            return code
    raise AssertionError(f"no example with {marker} in the README's Extending section")


def _drop_in(package: object, registry: object, tmp_path: Path, file_name: str, code: str, monkeypatch) -> None:
    extra = tmp_path / f"more_{file_name}"
    extra.mkdir()
    (extra / file_name).write_text(code)
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(extra)])  # type: ignore[attr-defined]
    registry.rediscover()  # type: ignore[attr-defined]


def test_a_new_method_is_one_file(tmp_path: Path, monkeypatch):
    """The README's method, dropped into the methods package's search path, is listed, built
    and used like any other method."""
    from pluralign.methods.registry import build_method
    from pluralign.probes import Probe
    from pluralign.targets import AlignmentTarget

    _drop_in(methods_package, METHODS, tmp_path, "longest.py", _readme_block("methods/longest.py"), monkeypatch)
    try:
        assert "longest" in METHODS.all()
        method = build_method("longest")
        judgement = method.judge(Probe(prompt="q", responses=["short", "a longer one"]), [])
        assert method.choose(judgement, AlignmentTarget(values={"care": 1.0})).index == 1
    finally:
        METHODS.unregister("longest")
        METHODS.rediscover()


def test_a_new_backend_with_its_own_option_is_one_file(tmp_path: Path, monkeypatch):
    """The README's backend joins the registry, its option joins the settings (validated,
    with its flag in errors), and a method runs on it."""
    from pluralign.api import Chooser
    from pluralign.cli.common import with_settings_options
    from pluralign.errors import InputError
    from pluralign.settings import components, make_settings

    _drop_in(judges_package, BACKENDS, tmp_path, "echo.py", _readme_block("judges/echo.py"), monkeypatch)
    try:
        assert "echo" in BACKENDS.all()
        assert any("echo_letter" in model.model_fields for model in components())
        namespace: dict = {}
        exec(compile(_readme_block("tests/test_judges_echo.py"), "README test", "exec"), namespace)
        namespace["test_echo_picks_its_letter"]()  # the README's own test of the example
        with pytest.raises(
            InputError, match="--echo-letter does not apply to --method unaligned with --backend llamacpp"
        ):
            Chooser("unaligned", make_settings({"echo_letter": "B", "cache": False}))

        @with_settings_options()
        def command(options: dict | None = None) -> None: ...

        assert "opt_echo_letter" in [p for p in command.__signature__.parameters]  # type: ignore[attr-defined]
    finally:
        BACKENDS.unregister("echo")
        BACKENDS.rediscover()
