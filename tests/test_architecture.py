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
from pluralign.prediction.judges import BACKENDS
from pluralign.prediction.methods.registry import METHODS
from pluralign.support.options import Options
from support import ROOT

SRC = ROOT / "src" / "pluralign"
README = (ROOT / "README.md").read_text()
MAX_FUNCTION_LINES = 60
MAX_MODULE_LINES = 400


def _modules() -> Iterator[tuple[str, Path, ast.Module]]:
    for path in sorted(SRC.rglob("*.py")):
        parts = path.relative_to(SRC.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        yield name, path, ast.parse(path.read_text(), str(path))


def _imports(tree: ast.Module, name: str, is_package: bool) -> set[str]:
    """pluralign modules this module imports anywhere: at module level, inside functions (a
    cycle hidden in a function is still a cycle) and for type checking (a type that needs a
    module above or beside in a circle is a sign the type lives in the wrong place); ``from a
    import b`` counts ``a.b`` when ``b`` is a module."""
    out: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
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
        graph[name] = _imports(tree, name, path.name == "__init__.py")
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
    assert cycles == []


WINGS = {
    "support": 0,
    "storage": 0,
    "choice": 1,
    "prediction": 2,
    "settings": 3,
    "people": 3,
    "evaluation": 4,
    "api": 5,
    "doctor": 5,
    "server": 6,
    "cli": 6,
    "launch": 7,
    "__main__": 7,
}
"""The one-way flow of docs/architecture.md: a module may import its own wing and those below."""


def _wing(module: str) -> str:
    return module.split(".")[1] if "." in module else module


def test_wings_import_only_downwards():
    """cli/server -> api -> evaluation -> people, settings -> prediction -> choice -> support, function-local
    imports included: a lower wing never reaches up, not even inside a function."""
    offenders = [
        f"{name} imports {dep}"
        for name, deps in _graph().items()
        if name != "pluralign"
        for dep in deps
        if dep != "pluralign" and WINGS[_wing(dep)] > WINGS[_wing(name)]
    ]
    assert offenders == []
    assert {_wing(name) for name in _graph() if name != "pluralign"} <= set(WINGS)


def test_the_top_level_holds_only_the_faces_and_the_wings():
    top = sorted(p.stem for p in SRC.glob("*.py"))
    assert top == ["__init__", "__main__", "api", "doctor", "launch", "settings"], top


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
    names = {"run.json", "results.json", "decisions.jsonl", "assessments.jsonl", "calls.jsonl", "input_output"}
    offenders = []
    for folder in (SRC, ROOT / "bench"):
        for path in folder.rglob("*.py"):
            if path == SRC / "evaluation" / "runs.py":
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


def test_components_are_found_through_their_index_and_nothing_else_is_imported_as_one():
    import sys

    for registry in (METHODS, BACKENDS):
        specs = registry.all()
        assert specs and set(registry.index) <= set(specs), registry.kind
        for spec in specs.values():
            assert issubclass(spec.options, Options), spec.name
            assert spec.options.model_config.get("frozen") and spec.options.model_config.get("extra") == "forbid"
    # the judges package's support modules are never loaded by listing or getting backends
    for support_module in ("pluralign.prediction.judges.prefixes", "pluralign.prediction.judges.llamacpp_decoder"):
        registry_source = (SRC / "support" / "registry.py").read_text()
        assert support_module not in registry_source and support_module not in BACKENDS.index.values()
    assert "pluralign.prediction.judges.cache" not in BACKENDS.index.values()
    assert all(name in sys.modules for name in set(BACKENDS.index.values()) | set(METHODS.index.values()))


# ---- the extension guides, run as written ------------------------------------------------------

GUIDES = ROOT / "docs" / "guides"


def _guide_block(guide: str, marker: str, language: str = "python") -> str:
    text = (GUIDES / guide).read_text()
    for block in text.split(f"```{language}")[1:]:
        code = block.split("```", 1)[0]
        if marker in code:
            return code
    raise AssertionError(f"no {language} block with {marker} in docs/guides/{guide}")


def _install_plugin(tmp_path: Path, guide: str, module: str) -> Path:
    """The guide's module and its entry point as an installed distribution (a dist-info folder
    beside the module on a path entry): what `pip install` of the reader's package leaves."""
    import tomllib

    site = tmp_path / "site"
    site.mkdir(exist_ok=True)
    (site / f"{module}.py").write_text(_guide_block(guide, f"# {module}.py"))
    table = tomllib.loads(_guide_block(guide, "[project.entry-points", "toml"))["project"]["entry-points"]
    info = site / f"{module}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {module}\nVersion: 0.1\n")
    lines = [f"[{group}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()) for group, entries in table.items()]
    (info / "entry_points.txt").write_text("\n".join(lines))
    return site


@pytest.fixture
def plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Install a guide's example as a package of its own, for this test only."""

    def install(guide: str, module: str) -> Path:
        site = _install_plugin(tmp_path, guide, module)
        monkeypatch.syspath_prepend(str(site))
        for registry in (METHODS, BACKENDS):
            registry.relist()
        return site

    yield install
    for registry, name in ((METHODS, "longest"), (BACKENDS, "echo")):
        registry.unregister(name)
        registry.relist()


def test_a_method_from_another_package_is_one_module_and_an_entry_point(plugin):
    """The guide's method, installed as a package of its own: listed, built and used like any
    other method, and its own test (from the guide) passes."""
    site = plugin("method.md", "my_longest")
    assert "longest" in METHODS.all()
    namespace: dict = {}
    exec(compile(_guide_block("method.md", "# tests/test_longest.py"), "guide test", "exec"), namespace)
    namespace["test_longest_picks_the_longest_response"]()
    from support import run_cli

    res = run_cli("choose", "--method", "longest", "--target", '{"care": 1}', "--question", "q", "--response", "a",
                  "--response", "bbb", "--json", env={"PYTHONPATH": str(site)})  # fmt: skip
    assert res.returncode == 0 and '"selected_index": 1' in res.stdout, res.stderr


def test_a_backend_with_its_own_option_from_another_package(plugin):
    """The guide's backend joins the registry, its option joins the settings (validated, with
    its flag in errors and in every command's signature), and a method runs on it."""
    from pluralign.api import Chooser
    from pluralign.cli.common import with_settings_options
    from pluralign.settings import components, make_settings
    from pluralign.support.errors import InputError

    plugin("backend.md", "my_echo")
    assert "echo" in BACKENDS.all()
    assert any("echo_letter" in model.model_fields for model in components())
    namespace: dict = {}
    exec(compile(_guide_block("backend.md", "# tests/test_echo.py"), "guide test", "exec"), namespace)
    namespace["test_echo_picks_its_letter"]()
    with pytest.raises(InputError, match="--echo-letter does not apply to --method unaligned with --backend llamacpp"):
        Chooser("unaligned", make_settings({"echo_letter": "B", "cache": False}))

    @with_settings_options()
    def command(options: dict | None = None) -> None: ...

    assert "opt_echo_letter" in [p for p in command.__signature__.parameters]  # type: ignore[attr-defined]


def test_a_broken_plugin_is_named_and_never_hides_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    from pluralign.support.errors import InputError

    site = tmp_path / "site"
    (site / "broken-0.1.dist-info").mkdir(parents=True)
    (site / "broken-0.1.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: broken\nVersion: 0.1\n")
    (site / "broken-0.1.dist-info" / "entry_points.txt").write_text(
        "[pluralign.methods]\nbroken = no_such_module:SPEC\n"
    )
    monkeypatch.syspath_prepend(str(site))
    METHODS.relist()
    try:
        assert "spm" in METHODS.all() and "broken" not in METHODS.all()
        with pytest.raises(InputError, match="method 'broken' from no_such_module:SPEC cannot be loaded"):
            METHODS.get("broken")
    finally:
        METHODS.relist()


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("pluralign.targets", "pluralign.choice.targets"),
        ("pluralign.judges.base", "pluralign.prediction.judges.base"),
        ("pluralign.methods.registry", "pluralign.prediction.methods.registry"),
        ("pluralign.icl", "pluralign.prediction.examples"),
        ("pluralign.userstore", "pluralign.people.userstore"),
        ("pluralign.errors", "pluralign.support.errors"),
    ],
)
def test_a_module_path_of_0_2_still_imports_the_same_module_with_a_warning(old: str, new: str):
    import sys
    import warnings

    sys.modules.pop(old, None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
    assert any(issubclass(w.category, DeprecationWarning) and new in str(w.message) for w in caught)


def test_an_endpoint_from_another_package_sits_behind_admission(plugin):
    """The guide's route, installed as a package of its own: served by create_app, behind the
    same admission as every route, and its own test (from the guide) passes."""
    plugin("endpoint.md", "my_lengths")
    namespace: dict = {}
    exec(compile(_guide_block("endpoint.md", "# tests/test_lengths.py"), "guide test", "exec"), namespace)
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        namespace["test_lengths"](Path(tmp))


def test_a_benchmark_builder_is_one_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    (tmp_path / "my_builder.py").write_text(_guide_block("benchmark.md", "# my_builder.py"))
    monkeypatch.syspath_prepend(str(tmp_path))
    namespace: dict = {}
    exec(compile(_guide_block("benchmark.md", "# tests/test_my_builder.py"), "guide test", "exec"), namespace)
    namespace["test_build_writes_a_benchmark_eval_can_read"](tmp_path)


def test_one_client_per_protocol_and_one_model_loader():
    """The OpenAI chat protocol is spoken by one client (prediction/chat_client.py) for judge and
    generator alike, never through the openai SDK; a GGUF is loaded in one place, whose shared
    backends the generator uses too."""
    offenders = []
    for name, _, tree in _modules():
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                names = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                if any(n == "openai" or n.startswith("openai.") for n in names):
                    offenders.append(f"{name} imports the openai SDK")
            if isinstance(node, ast.Call):
                func = node.func
                callee = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                owner = getattr(func.value, "id", "") if isinstance(func, ast.Attribute) else ""
                if callee == "AsyncClient" and name != "pluralign.prediction.chat_client":
                    offenders.append(f"{name} makes an httpx client")
                loads = callee == "Llama" or (owner == "Llama" and callee == "from_pretrained")
                if loads and name != "pluralign.prediction.judges.llamacpp":
                    offenders.append(f"{name} loads a model")
    assert offenders == []


def test_modules_are_small():
    big = [f"{name}: {len(path.read_text().splitlines())} lines" for name, path, _ in _modules()]
    assert [b for b in big if int(b.rsplit(": ", 1)[1].split()[0]) > MAX_MODULE_LINES] == []
