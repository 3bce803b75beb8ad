#!/usr/bin/env bash
# Build and install llama-cpp-python for this CPU, safely, then prove it decodes a token.
#
# Why not the default native build: llama.cpp's -march=native turns on ggml's AMX kernels
# on Xeons of the Sapphire Rapids family, and on the cloud VMs seen here the first decode
# then dies with "Illegal instruction" (tileloadd) although the CPU advertises AMX. So the
# instruction sets are chosen here from /proc/cpuinfo and passed explicitly with
# GGML_NATIVE=OFF: AVX-512 (and its VNNI/BF16/VBMI parts) where the CPU has them, AVX2 and
# friends otherwise. AMX: ggml's kernels load their tile configuration from a stack object the
# compiler may optimise away, and die on `tilezero`; the `amx` variant is built from the
# sdist with scripts/patches/ggml-amx-tile-config.patch applied (static configuration, tile
# permission requested per thread), chosen by `auto` where the CPU exposes amx_tile and
# amx_int8 (PLURALIGN_LLAMA_AMX=0 opts out), and kept only if its smoke check passes; the
# other variants are built from the unpatched sdist.
# The wheel is cached per flag set, so a wheel built for one CPU is never reused on a CPU
# that lacks its instructions. A smoke check decodes one token in a child process; if the
# tuned build cannot run here it falls back to the portable AVX2 build, and if that fails
# too it says what to do.
#
# Usage: install_llama_cpp.sh PYTHON [variant]   variant: auto (default), avx512, avx2, generic, amx
#        install_llama_cpp.sh --print [variant]    only say which variant and flags would be built
#        install_llama_cpp.sh --patches [variant]  only list the patches that variant's build applies
set -euo pipefail
PY="$1"
VARIANT="${2:-${PLURALIGN_LLAMA_VARIANT:-auto}}"
VERSION="${PLURALIGN_LLAMA_CPP_VERSION:-0.3.36}"
WHEELS="${PLURALIGN_WHEEL_CACHE:-$HOME/.cache/pluralign/wheels}"
SMOKE_MODEL="${3:-}"
CPUINFO="${PLURALIGN_CPUINFO:-/proc/cpuinfo}"  # another file only to test the choice

has() { grep -qw "$1" "$CPUINFO" 2>/dev/null; }

flags_for() {  # variant -> CMAKE_ARGS
    local v="$1" args="-DGGML_NATIVE=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF"
    case "$(uname -m)" in
        x86_64|amd64) ;;
        *) echo "-DGGML_NATIVE=ON"; return ;;  # ARM and others: llama.cpp's own detection is safe there
    esac
    if [ "$v" = "generic" ]; then
        echo "$args -DGGML_AVX=OFF -DGGML_AVX2=OFF -DGGML_FMA=OFF -DGGML_F16C=OFF -DGGML_BMI2=OFF"
        return
    fi
    args="$args -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON -DGGML_F16C=ON"
    has bmi2 && args="$args -DGGML_BMI2=ON" || args="$args -DGGML_BMI2=OFF"
    if [ "$v" = "avx2" ]; then
        echo "$args -DGGML_AVX_VNNI=OFF -DGGML_AVX512=OFF"
        return
    fi
    has avx_vnni && args="$args -DGGML_AVX_VNNI=ON"
    args="$args -DGGML_AVX512=ON"
    has avx512_vnni && args="$args -DGGML_AVX512_VNNI=ON"
    has avx512_bf16 && args="$args -DGGML_AVX512_BF16=ON"
    has avx512vbmi && args="$args -DGGML_AVX512_VBMI=ON"
    if [ "$v" = "amx" ]; then
        args="${args//-DGGML_AMX_TILE=OFF/-DGGML_AMX_TILE=ON}"
        args="${args//-DGGML_AMX_INT8=OFF/-DGGML_AMX_INT8=ON}"
        has amx_bf16 && args="${args//-DGGML_AMX_BF16=OFF/-DGGML_AMX_BF16=ON}"
    fi
    echo "$args"
}

auto_variant() {
    case "$(uname -m)" in x86_64|amd64) ;; *) echo native; return ;; esac
    if [ "${PLURALIGN_LLAMA_AMX:-1}" = "1" ] && has amx_int8 && has amx_tile; then echo amx; return; fi
    if has avx512f && has avx512cd && has avx512vl && has avx512dq && has avx512bw; then echo avx512; return; fi
    if has avx2 && has fma && has f16c; then echo avx2; return; fi
    echo generic
}

installed_variant() {
    "$PY" - <<'EOF' 2>/dev/null || true
import importlib.metadata as m, json, pathlib
try:
    d = m.distribution("llama-cpp-python")
    p = pathlib.Path(str(d.locate_file("llama_cpp"))) / "pluralign_build.json"
    print(json.loads(p.read_text())["key"])
except Exception:
    pass
EOF
}

smoke() {  # decode one token in a child process; a crash must not take the caller down
    "$PY" -m pluralign.doctor --smoke ${SMOKE_MODEL:+--model "$SMOKE_MODEL"}
}

PATCHES="$(cd "$(dirname "$0")" && pwd)/patches"

patches_for() {  # variant -> the patch files applied to the sdist before building
    if [ "$1" = "amx" ]; then ls "$PATCHES"/ggml-amx-*.patch; fi
}

build_from_sdist() {  # variant args out: build the wheel, patched for the variant
    local v="$1" args="$2" out="$3" src patch
    if [ -z "$(patches_for "$v")" ]; then
        CMAKE_ARGS="$args" "$PY" -m pip wheel -q --no-deps --no-cache-dir --no-binary llama-cpp-python \
            "llama-cpp-python==$VERSION" -w "$out"
        return
    fi
    src="$(mktemp -d)"
    "$PY" -m pip download -q --no-deps --no-binary :all: "llama-cpp-python==$VERSION" -d "$src"
    tar xzf "$src"/llama_cpp_python-"$VERSION".tar.gz -C "$src"
    for patch in $(patches_for "$v"); do
        if command -v patch >/dev/null; then
            patch -s -p1 -d "$src/llama_cpp_python-$VERSION" < "$patch"
        else
            (cd "$src/llama_cpp_python-$VERSION" && git apply "$patch")
        fi
    done
    CMAKE_ARGS="$args" "$PY" -m pip wheel -q --no-deps --no-cache-dir "$src/llama_cpp_python-$VERSION" -w "$out"
    rm -rf "$src"
}

build_and_install() {
    local v="$1" args key dir
    args="$(flags_for "$v")"
    key="llama_cpp_python-$VERSION-$v-$( (echo "$args"; cat $(patches_for "$v") /dev/null) | sha256sum | cut -c1-12)"
    dir="$WHEELS/$key"
    if [ "$(installed_variant)" = "$key" ]; then
        return 0
    fi
    if ! ls "$dir"/*.whl >/dev/null 2>&1; then
        echo "building llama-cpp-python $VERSION for this CPU ($v: $args); about 11 minutes on 2 cores" >&2
        mkdir -p "$dir.tmp"
        build_from_sdist "$v" "$args" "$dir.tmp"
        rm -rf "$dir" && mv "$dir.tmp" "$dir"
    fi
    "$PY" -m pip install -q --force-reinstall --no-deps "$dir"/*.whl
    # record what was built, so a later set-up knows and `pluralign doctor` can say
    "$PY" - "$key" "$v" "$args" <<'EOF'
import importlib.util, json, pathlib, sys
spec = importlib.util.find_spec("llama_cpp")
path = pathlib.Path(spec.origin).parent / "pluralign_build.json"
path.write_text(json.dumps({"key": sys.argv[1], "variant": sys.argv[2], "cmake_args": sys.argv[3]}))
EOF
}

if [ "$VARIANT" = "auto" ]; then VARIANT="$(auto_variant)"; fi
case "$VARIANT" in
    avx512|avx2|generic|amx) ;;
    *) echo "error: unknown llama.cpp build variant '$VARIANT' (auto, avx512, avx2, generic or amx)" >&2; exit 2 ;;
esac
if [ "$PY" = "--print" ]; then
    echo "$VARIANT $(flags_for "$VARIANT")"
    exit 0
fi
if [ "$PY" = "--patches" ]; then
    patches_for "$VARIANT"
    exit 0
fi
build_and_install "$VARIANT"
if [ -z "${PLURALIGN_SKIP_SMOKE:-}" ]; then
    if ! smoke; then
        if [ "$VARIANT" = "amx" ]; then
            echo "the amx build of llama.cpp cannot run on this CPU; falling back to the AVX-512 build" >&2
            build_and_install avx512
            if smoke; then exit 0; fi
            VARIANT=avx512
        fi
        if [ "$VARIANT" != "avx2" ] && [ "$VARIANT" != "generic" ] && has avx2; then
            echo "the $VARIANT build of llama.cpp cannot run on this CPU; falling back to the portable AVX2 build" >&2
            build_and_install avx2
            if smoke; then exit 0; fi
        fi
        echo "error: llama.cpp cannot decode on this machine (see the line above). Try" \
             "'PLURALIGN_LLAMA_VARIANT=generic bash scripts/setup.sh', or use --backend openai" \
             "against a llama.cpp/vLLM server elsewhere." >&2
        exit 1
    fi
fi
