"""Does llama.cpp run on this machine? Build flags, CPU features, and one decoded token.

The decode runs in a child process: a build with instructions this CPU lacks dies with
"Illegal instruction" (SIGILL), which must not take the caller down, and the parent turns
that into a sentence that says what to do. ``python -m pluralign.doctor --smoke`` is what
``scripts/setup.sh`` runs after building llama-cpp-python.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from pluralign.support.cpu import default_threads, usable_cpus

INTERESTING_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "f16c",
    "avx_vnni",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "avx512vbmi",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)
FIX = (
    "rebuild for a portable instruction set: `PLURALIGN_LLAMA_VARIANT=avx2 bash scripts/setup.sh` "
    "(or `generic` on CPUs without AVX2), or use --backend openai against a llama.cpp/vLLM server elsewhere"
)

_CHILD = """
import sys, time
from llama_cpp import Llama
t0 = time.perf_counter()
llm = Llama(model_path=sys.argv[1], n_ctx=256, n_threads=int(sys.argv[2]), verbose=False)
# a prompt long enough for the batched matrix kernels (AMX tiles among them), then one token
llm.eval(llm.tokenize(b"Question: which city is the capital of France, and why did it become the capital? " * 3))
llm.reset()
tokens = llm.tokenize(b"The capital of France is")
llm.eval(tokens)
token = llm.sample(temp=0.0)
print(repr(llm.detokenize([token]).decode("utf-8", "replace")), round(time.perf_counter() - t0, 2))
"""


def cpu_flags() -> list[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return []
    for line in text.splitlines():
        if line.startswith("flags"):
            present = set(line.split(":", 1)[1].split())
            return [f for f in INTERESTING_FLAGS if f in present]
    return []


def build_info() -> dict[str, str]:
    spec = importlib.util.find_spec("llama_cpp")
    if spec is None or spec.origin is None:
        return {}
    path = Path(spec.origin).parent / "pluralign_build.json"
    try:
        data = json.loads(path.read_text())
        return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {"variant": "not built by pluralign's set-up (flags unknown)"}


def smoke(model: str, timeout: float = 180.0) -> tuple[bool, str]:
    """Decode one token in a child process: (worked, what happened)."""
    if importlib.util.find_spec("llama_cpp") is None:
        return False, "llama-cpp-python is not installed: pip install 'pluralign[llamacpp]'"
    from pluralign.prediction.weights import resolve_gguf
    from pluralign.support.errors import PluralignError

    try:
        path = resolve_gguf(model)
    except PluralignError as exc:
        return False, f"no model to test with: {exc}"
    threads = str(min(2, default_threads()))
    try:
        proc = subprocess.run(
            [sys.executable, "-c", _CHILD, str(path), threads], capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return False, f"decoding one token took more than {timeout:.0f} s; the machine may be overloaded"
    if proc.returncode == 0:
        return True, f"decoded a token with {Path(path).name}: {proc.stdout.strip()} s"
    if proc.returncode in (-signal.SIGILL, 128 + signal.SIGILL, 132):
        return (
            False,
            f"llama.cpp died with 'Illegal instruction': this build uses instructions this CPU cannot run; {FIX}",
        )
    tail = " ".join(proc.stderr.strip().splitlines()[-1:]) if proc.stderr.strip() else f"exit status {proc.returncode}"
    return False, f"llama.cpp could not decode a token ({tail}); {FIX}"


def report(model: str = "smollm2-135m") -> int:
    """Print what was found; 0 when llama.cpp decodes here, 1 when it does not."""
    build = build_info()
    print(f"CPU flags: {' '.join(cpu_flags()) or 'unknown'}")
    load = os.getloadavg()[0]
    print(f"usable cores: {usable_cpus()}, llama.cpp threads by default now: {default_threads()} (load {load:.2f})")
    print(f"llama.cpp build: {build.get('variant', 'not installed')} {build.get('cmake_args', '')}".rstrip())
    ok, message = smoke(model)
    print(("ok: " if ok else "error: ") + message)
    return 0 if ok else 1


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--smoke", action="store_true", help="only the one-token check (for set-up scripts)")
    parser.add_argument("--model", default="smollm2-135m")
    args = parser.parse_args()
    if args.smoke:
        ok, message = smoke(args.model)
        print(("llama.cpp smoke check: ok, " if ok else "error: ") + message, file=sys.stdout if ok else sys.stderr)
        sys.exit(0 if ok else 1)
    sys.exit(report(args.model))


if __name__ == "__main__":
    main()
