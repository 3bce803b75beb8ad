"""Set-up for the CPU at hand: the llama.cpp build variant, the doctor, threads."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def test_doctor_turns_an_illegal_instruction_into_advice(tmp_path: Path, smollm2_path: Path):
    fake = tmp_path / "fake" / "llama_cpp"
    fake.mkdir(parents=True)
    # a stand-in for a build with instructions this CPU lacks: the import dies with SIGILL
    (fake / "__init__.py").write_text("import os, signal\nos.kill(os.getpid(), signal.SIGILL)\n")
    env = {**os.environ, "PYTHONPATH": f"{fake.parent}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    res = subprocess.run(
        [sys.executable, "-m", "pluralign.doctor", "--smoke", "--model", str(smollm2_path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert res.returncode == 1
    assert "Illegal instruction" in res.stderr and "PLURALIGN_LLAMA_VARIANT=avx2" in res.stderr


def test_doctor_decodes_a_token_with_the_real_build(smollm2_path: Path):
    res = subprocess.run(
        [sys.executable, "-m", "pluralign.doctor", "--smoke", "--model", str(smollm2_path)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert res.returncode == 0, res.stderr
    assert "smoke check: ok, decoded a token" in res.stdout


def test_threads_option_reaches_llama_cpp(smollm2_path: Path):
    from pluralign.prediction.judges import make_backend
    from pluralign.prediction.judges.llamacpp import LlamaCppOptions
    from pluralign.support.cpu import default_threads

    backend = make_backend("llamacpp", str(smollm2_path), LlamaCppOptions(threads=1, n_ctx=512))
    try:
        assert backend.n_threads == 1 and backend.llama.n_threads == 1  # type: ignore[attr-defined]
    finally:
        backend.close()
    assert 1 <= default_threads() <= (os.cpu_count() or 1)


@pytest.mark.parametrize(
    ("flags", "variant", "on", "off"),
    [
        ("fpu sse4_2 avx avx2 fma f16c bmi2", "avx2", ["GGML_AVX2=ON", "GGML_FMA=ON"], ["GGML_AVX512=OFF"]),
        (
            "avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512_vnni",
            "avx512",
            ["GGML_AVX512=ON", "GGML_AVX512_VNNI=ON"],
            ["GGML_AMX_INT8=OFF", "GGML_NATIVE=OFF"],
        ),
        ("fpu sse4_2", "generic", ["GGML_AVX=OFF", "GGML_AVX2=OFF"], ["GGML_AVX512=ON"]),
    ],
)
def test_setup_builds_for_the_cpu_without_amx(tmp_path: Path, flags, variant, on, off):
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    script = Path(__file__).resolve().parent.parent / "scripts" / "install_llama_cpp.sh"
    res = subprocess.run(
        ["bash", str(script), "--print"],
        capture_output=True,
        text=True,
        env={**os.environ, "PLURALIGN_CPUINFO": str(cpuinfo)},
    )
    assert res.returncode == 0, res.stderr
    chosen, *args = res.stdout.split()
    assert chosen == variant
    for flag in on:
        assert f"-D{flag}" in args
    for flag in off:  # never switched on
        assert f"-D{flag.split('=')[0]}=ON" not in args
    assert "-DGGML_NATIVE=OFF" in args and not any(a.startswith("-DGGML_AMX") and a.endswith("=ON") for a in args)


SAPPHIRE_RAPIDS = " ".join(
    [
        "avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw",
        "avx512_vnni avx512_bf16 amx_tile amx_int8 amx_bf16",
    ]
)


def _install_script(tmp_path: Path, flags: str, *args: str, **env: str) -> subprocess.CompletedProcess:
    cpuinfo = tmp_path / "cpuinfo"
    cpuinfo.write_text(f"processor\t: 0\nflags\t\t: {flags}\n")
    script = Path(__file__).resolve().parent.parent / "scripts" / "install_llama_cpp.sh"
    return subprocess.run(
        ["bash", str(script), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PLURALIGN_CPUINFO": str(cpuinfo), **env},
    )


def test_setup_builds_the_patched_amx_variant_where_the_cpu_exposes_amx(tmp_path: Path):
    """AMX on, from the sdist with the tile-configuration patch; PLURALIGN_LLAMA_AMX=0 keeps AVX-512."""
    res = _install_script(tmp_path, SAPPHIRE_RAPIDS, "--print")
    chosen, *args = res.stdout.split()
    assert res.returncode == 0 and chosen == "amx"
    assert {"-DGGML_AMX_TILE=ON", "-DGGML_AMX_INT8=ON", "-DGGML_AMX_BF16=ON", "-DGGML_AVX512=ON"} <= set(args)
    patches = _install_script(tmp_path, SAPPHIRE_RAPIDS, "--patches").stdout.split()
    assert [Path(p).name for p in patches] == ["ggml-amx-tile-config.patch"]
    res = _install_script(tmp_path, SAPPHIRE_RAPIDS, "--print", PLURALIGN_LLAMA_AMX="0")
    chosen, *args = res.stdout.split()
    assert chosen == "avx512" and not any(a.startswith("-DGGML_AMX") and a.endswith("=ON") for a in args)


@pytest.mark.parametrize("variant", ["avx512", "avx2", "generic"])
def test_the_amx_patch_never_reaches_the_other_builds(tmp_path: Path, variant: str):
    res = _install_script(tmp_path, SAPPHIRE_RAPIDS, "--patches", variant)
    assert res.returncode == 0 and res.stdout.strip() == ""


def test_the_amx_patch_touches_only_ggml_amx_kernels():
    """Every hunk is in ggml-cpu/amx/ (compiled only with __AMX_INT8__), so AVX2 and AVX-512
    builds compile the same code with or without it; the configuration is static storage."""
    patch = Path(__file__).resolve().parent.parent / "scripts" / "patches" / "ggml-amx-tile-config.patch"
    text = patch.read_text()
    files = [line.split()[1] for line in text.splitlines() if line.startswith(("--- ", "+++ "))]
    assert files and all(f.endswith("vendor/llama.cpp/ggml/src/ggml-cpu/amx/mmq.cpp") for f in files)
    added = [line[1:] for line in text.splitlines() if line.startswith("+") and not line.startswith("+++")]
    assert any("static const tile_config_t tc" in line for line in added)
    assert any("ARCH_REQ_XCOMP_PERM" in line for line in added)


def test_setup_refuses_an_unknown_build_variant(tmp_path: Path):
    """A mistyped variant once built and installed a wheel under that name; now it is an error."""
    script = Path(__file__).resolve().parent.parent / "scripts" / "install_llama_cpp.sh"
    res = subprocess.run(
        ["bash", str(script), str(tmp_path / "no-python"), "avx-512"],
        capture_output=True,
        text=True,
        env={**os.environ, "PLURALIGN_WHEEL_CACHE": str(tmp_path / "wheels")},
    )
    assert res.returncode == 2
    assert res.stderr.strip() == "error: unknown llama.cpp build variant 'avx-512' (auto, avx512, avx2, generic or amx)"
    assert not (tmp_path / "wheels").exists()


def test_the_demo_checked_by_the_bench_is_the_demo_users_run(monkeypatch: pytest.MonkeyPatch):
    """scripts/demo.sh's question and targets are the ones bench/clear_cut.py checks in every
    response order (the README's "right in every order and seed" is about what users see), and
    the two people get different answers by the labels the bench expects."""
    import re

    monkeypatch.syspath_prepend(str(ROOT / "bench"))
    import clear_cut

    demo = (ROOT / "scripts" / "demo.sh").read_text()
    runs = re.findall(r"choose --input (\S+) --target (\S+)", demo)
    assert [(ROOT / i, ROOT / t) for i, t in runs] == [
        (clear_cut.DEMO_INPUT, p) for p, _ in clear_cut.DEMO_PEOPLE.values()
    ]
    question = json.loads(clear_cut.DEMO_INPUT.read_text())
    assert len(question["responses"]) == 2
    rights = {right for _, right in clear_cut.DEMO_PEOPLE.values()}
    assert rights == {0, 1}  # two people, two different choices
    targets = [json.loads(p.read_text()) for p, _ in clear_cut.DEMO_PEOPLE.values()]
    assert len({json.dumps(t, sort_keys=True) for t in targets}) == 2
