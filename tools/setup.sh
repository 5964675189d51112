#!/usr/bin/env bash
# Installs every build and test dependency from Debian packages. Idempotent: re-running is cheap.
# The CUDA toolkit (nvcc, cuBLAS, cuDNN, NCCL) is expected to be on the machine already.
set -euo pipefail
pkgs=(build-essential cmake pkg-config
      libopenblas-openmp-dev libturbojpeg0-dev libpng-dev libhdf5-dev libcjson-dev
      libopenmpi-dev openmpi-bin
      python3 python3-venv python3-pip python3-numpy python3-h5py python3-torch python3-torchvision)
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

# Oracles only published on PyPI live in a virtual environment made from /usr/bin/python3 with
# --system-site-packages, so one interpreter (.venv/bin/python) sees torch and these alike.
here=$(cd "$(dirname "$0")/.." && pwd)
venv="$here/.venv"
# numpy stays the system's (torch and h5py from Debian are built against it): pin it, and pick
# versions of the PyPI packages that accept it.
# motmetrics (py-motmetrics) and trackeval (TrackEval) are the tracking-metric oracles. trackeval
# 1.0.0 is the last release that accepts numpy < 2; it is installed without its declared
# dependencies, which would pull opencv-python (clashing with the headless cv2 here), matplotlib and
# scikit-image, none of which its metrics need: numpy and scipy (via motmetrics) and tabulate do.
pypi=(pycocotools "opencv-python-headless<4.11" motmetrics tabulate)
pypi_nodeps=("trackeval==1.0.0")
if [ ! -x "$venv/bin/python" ]; then
  /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
if ! "$venv/bin/python" -c "import pycocotools, cv2, motmetrics, tabulate, trackeval" 2>/dev/null; then
  echo "setup: installing ${pypi[*]} ${pypi_nodeps[*]} into $venv"
  pin=$(mktemp)
  /usr/bin/python3 -c "import numpy; print('numpy==' + numpy.__version__)" >"$pin"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$pin" "${pypi[@]}"
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -c "$pin" --no-deps "${pypi_nodeps[@]}"
  rm -f "$pin"
fi
"$venv/bin/python" -c "import torch, h5py, pycocotools, cv2, motmetrics, trackeval" \
  || { echo "setup: $venv cannot import the oracle packages" >&2; exit 1; }
echo "setup: done (test interpreter: $venv/bin/python)"
