"""Set-up for the CPU at hand: the llama.cpp build variant, the doctor, threads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest


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
    from pluralign.cpu import default_threads
    from pluralign.judges import make_backend
    from pluralign.judges.llamacpp import LlamaCppOptions

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
        (  # a Sapphire Rapids Xeon: AVX-512 kept, AMX (which trapped) left out
            "avx avx2 fma f16c bmi2 avx512f avx512cd avx512vl avx512dq avx512bw avx512_bf16 amx_tile amx_int8 amx_bf16",
            "avx512",
            ["GGML_AVX512=ON", "GGML_AVX512_BF16=ON"],
            ["GGML_AMX_TILE=OFF", "GGML_AMX_INT8=OFF", "GGML_AMX_BF16=OFF"],
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
