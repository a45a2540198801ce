#!/usr/bin/env bash
# One GPU benchmark run, end to end in under 5 minutes on a machine with an NVIDIA GPU and the repo
# checked out: a venv, onnxruntime-gpu with its CUDA/cuDNN wheels, the project, then the quick bench
# on the CUDA provider. Prints the table; figures go to $OUT/bench-gpu.json (docs/benchmarks.md lists
# the wheels it installs).
#
#   bench/gpu.sh [OUT_DIR]      OUT_DIR defaults to $OUT, else ./out/gpu
#
# Environment (all optional):
#   PYTHON=python3.12   interpreter for the venv (default: python3.12, python3.11 or python3, >= 3.11)
#   VENV=.venv-gpu      where the venv goes (reused when it exists: a second run skips the downloads);
#                       VENV=none installs into $PYTHON's own environment instead: use it on an image whose
#                       Python already holds the CUDA libraries (a PyTorch cu13 image, say), offline too
#   WHEELS=/path        install offline from a folder of wheels (pip --no-index --find-links, and the
#                       project is built with the setuptools already installed)
#   ORT="onnxruntime-gpu[cuda,cudnn]==1.23.2"   override the onnxruntime-gpu requirement
#   WORKDIR=/path       where the bench writes its clips and run outputs (default: OUT_DIR/work)
#   ONLY="infer demo"   run only the workloads whose names start with these words (bench --only)
#   TRT=1               also install TensorRT's libraries and time the fixed-shape models on TensorRT
#                       (a second, short pass; TensorRT builds an engine per input shape, which is slow)
set -euo pipefail
cd "$(dirname "$0")/.."
started=$SECONDS
OUT_DIR="${1:-${OUT:-$PWD/out/gpu}}"
mkdir -p "$OUT_DIR"
say() { echo "gpu.sh [$((SECONDS - started)) s]: $*" >&2; }

if ! smi=$(nvidia-smi 2>/dev/null); then
    say "nvidia-smi failed: no NVIDIA GPU or driver here"; exit 1
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader >&2
# The driver's newest CUDA decides which onnxruntime-gpu build can run here.
cuda_major=$(sed -n 's/.*CUDA Version: *\([0-9]*\).*/\1/p' <<<"$smi" | head -n1)
cuda_major=${cuda_major:-12}
say "driver supports CUDA $cuda_major"

PY=${PYTHON:-$(command -v python3.12 || command -v python3.11 || command -v python3)}
"$PY" -c 'import sys; assert sys.version_info >= (3, 11), sys.version' || { say "$PY is older than 3.11"; exit 1; }
VENV=${VENV:-$PWD/.venv-gpu}
if [ "$VENV" = none ]; then
    python() { "$PY" "$@"; }
    pipeless-orch() { "$PY" -m pipeless.orchestrator.cli "$@"; }
else
    if [ ! -x "$VENV/bin/python" ]; then
        "$PY" -m venv "$VENV" || { say "cannot make a venv with $PY (Debian/Ubuntu: apt install python3-venv)"; exit 1; }
    fi
    . "$VENV/bin/activate"
fi
say "python: $(python -c 'import sys; print(sys.executable, sys.version.split()[0])')"
pip_install() {
    if [ -n "${WHEELS:-}" ]; then
        python -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" --no-build-isolation "$@"
    else
        python -m pip install -q --disable-pip-version-check "$@"
    fi
}
if [ "$cuda_major" -ge 13 ]; then
    ORT=${ORT:-"onnxruntime-gpu[cuda,cudnn]>=1.20"}   # PyPI's current builds are CUDA 13
    CUBLAS="nvidia-cublas~=13.0"
    TRT_LIBS="tensorrt-cu13-libs"
else
    ORT=${ORT:-"onnxruntime-gpu[cuda,cudnn]==1.23.2"}  # a CUDA 12 build, for drivers without CUDA 13
    CUBLAS="nvidia-cublas-cu12"
    TRT_LIBS="tensorrt-cu12-libs"
fi
say "installing $ORT and the project"
[ -n "${WHEELS:-}" ] || pip_install --upgrade pip >/dev/null 2>&1 || true
# The CPU-only 'onnxruntime' and 'onnxruntime-gpu' install the same 'onnxruntime' package: with both present,
# whichever was installed last wins, file by file. Keep only the GPU build.
if python -m pip show -q onnxruntime >/dev/null 2>&1; then
    say "removing the CPU-only onnxruntime, which shares its files with onnxruntime-gpu"
    python -m pip uninstall -q -y onnxruntime
fi
pip_install "$ORT"
pip_install "$CUBLAS" || say "could not install $CUBLAS (fine if the CUDA toolkit is installed system-wide)"
pip_install -e .   # keeps the onnxruntime-gpu just installed (the project requires onnxruntime-gpu>=1.20)
if [ "${TRT:-0}" = 1 ]; then
    pip_install "$TRT_LIBS" || say "could not install $TRT_LIBS; TensorRT will be skipped"
fi

# onnxruntime finds the pip-installed CUDA/cuDNN/TensorRT libraries through LD_LIBRARY_PATH, inherited by
# every process the bench and the pipeline start.
site=$(python -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
libs=$({ find "$site/nvidia" "$site/tensorrt_libs" -name 'lib*.so*' -printf '%h\n' 2>/dev/null || true; } \
       | sort -u | paste -sd: -)
export LD_LIBRARY_PATH="${libs}${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"

say "checking that onnxruntime runs a model on the GPU"
python - <<'EOF' >&2
import onnxruntime as ort
from onnxruntime.capi import build_and_package_info as info
from pipeless.workers.inference.providers import open_session

print(f"onnxruntime {ort.__version__} built for CUDA {getattr(info, 'cuda_version', '?')}; built in: "
      + ", ".join(ort.get_available_providers()))
session, provider = open_session("models/blazeface-front-128.onnx", ["cuda", "cpu"])
print(f"blazeface-front-128 opens on {provider}")
if provider != "CUDAExecutionProvider":
    print("WARNING: CUDA did not load (see above); the bench will run and record the CPU provider")
EOF

say "running the quick bench on CUDA"
only=()
for word in ${ONLY:-}; do only+=(--only "$word"); done
pipeless-orch bench --quick "${only[@]}" --providers cuda,cpu --workdir "${WORKDIR:-$OUT_DIR/work}" --json "$OUT_DIR/bench-gpu.json" \
    | tee "$OUT_DIR/bench-gpu.txt"
if [ "${TRT:-0}" = 1 ]; then
    say "TensorRT pass (fixed-shape models only; engines are built on first use)"
    pipeless-orch bench --quick --only infer-blazeface --providers tensorrt,cuda,cpu --workdir "${WORKDIR:-$OUT_DIR/work}" \
        --json "$OUT_DIR/bench-gpu-trt.json" | tee "$OUT_DIR/bench-gpu-trt.txt" || say "TensorRT pass failed"
fi
say "done; figures in $OUT_DIR/bench-gpu.json, table in $OUT_DIR/bench-gpu.txt"
