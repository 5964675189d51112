#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent: re-running is cheap.
# The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is expected to be on the machine already.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libopenblas-dev libturbojpeg0-dev libpng-dev libhdf5-dev libcjson-dev
      libopenmpi-dev openmpi-bin
      python3 python3-numpy python3-h5py python3-torch python3-torchvision)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  echo "setup: all Debian packages present"
fi
if ! command -v nvcc >/dev/null 2>&1 && [ -x /usr/local/cuda/bin/nvcc ]; then
  echo "setup: nvcc is at /usr/local/cuda/bin (add it to PATH to build the CUDA kernels)"
fi
/usr/bin/python3 -c "import torch, torchvision, h5py, numpy" \
  || { echo "setup: python3 oracle packages failed to import" >&2; exit 1; }
