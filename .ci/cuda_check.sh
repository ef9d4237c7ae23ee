#!/usr/bin/env bash
# The CUDA build (`--features cuda`) compile-checked and linted without a GPU: the CUDA 13.5
# compiler, runtime headers and NVVM come from their PyPI wheels into $R2DL_CUDA
# (default ~/.cache/r2dl/cuda-13.5, installed once), and candle's kernels are compiled to PTX for
# compute capability 9.0 (H100/H200). cudarc 0.19 knows CUDA up to 13.4, so its API bindings are
# taken at 13.4 (CUDARC_CUDA_VERSION); the kernels themselves are built by the 13.5 compiler.
set -euo pipefail
cd "$(dirname "$0")/.."
CUDA_DIR="${R2DL_CUDA:-$HOME/.cache/r2dl/cuda-13.5}"
if [ ! -x "$CUDA_DIR/nvidia/cu13/bin/nvcc" ]; then
  python3 -m pip install --quiet --disable-pip-version-check --no-deps --target "$CUDA_DIR" \
    nvidia-cuda-nvcc==13.5.37 nvidia-cuda-runtime==13.5.37 nvidia-cuda-crt==13.5.37 \
    nvidia-nvvm==13.5.37 nvidia-cuda-cccl==13.3.5.0.6
fi
CUDA="$CUDA_DIR/nvidia/cu13"
PATH="$CUDA/bin:$PATH" CUDA_ROOT="$CUDA" CUDA_PATH="$CUDA" CUDA_COMPUTE_CAP=90 CUDARC_CUDA_VERSION=13040 \
  cargo clippy -p r2dl --all-targets --features cuda -- -D warnings
