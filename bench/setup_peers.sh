#!/usr/bin/env bash
# The peer-benchmark environment: personae next to the libraries it is measured against.
#
#   bash bench/setup_peers.sh            # creates or updates bench/.venv-peers
#   PYTHON=python3.11 bash bench/setup_peers.sh
#
# Kept apart from the project venv because the peers pin their own numpy/scipy/torch and
# lightfm needs a legacy (non-PEP 517) build. Safe to run again: present pieces are checked,
# not reinstalled. Any failed step stops the script with a non-zero exit.
#
# Order matters:
#   1. torch first, from the CPU wheel pip finds locally (find-links). Installing anything that
#      depends on torch before it would pull the multi-GB CUDA build from the index.
#   2. personae itself (editable), then implicit and cornac (cornac's VAECF uses torch).
#   3. recbole 1.2.1 (torch pinned in the same command); it needs run-time shims, applied by
#      bench/peers/recbole_models.py (never import recbole.quick_start: its ray import fails).
#   4. lightfm 1.17: its sdist fails under PEP 517 isolation; with pip 25.2, wheel, Cython,
#      numpy and scipy present, `--no-use-pep517 --no-build-isolation` builds it.
# The installed versions are written to bench/results/peers-versions.txt.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(cd "$HERE/.." && pwd)"
VENV="$HERE/.venv-peers"
PY="${PYTHON:-python3}"
TORCH_VERSION="2.13.0"
PIP_VERSION="25.2"   # the last pip that still runs `setup.py install`-style legacy builds
LIGHTFM_VERSION="1.17"
RECBOLE_VERSION="1.2.1"  # installs next to torch 2.13 and NumPy 2 with small run-time shims

step() { printf '\n==> %s\n' "$*"; }
die() { printf 'setup_peers: %s\n' "$*" >&2; exit 1; }

started=$(date +%s)

if [[ ! -x "$VENV/bin/python" ]]; then
    step "creating $VENV with $($PY --version 2>&1)"
    "$PY" -m venv "$VENV" || die "could not create a venv with $PY (set PYTHON=...)"
fi
vpy="$VENV/bin/python"
pip() { "$vpy" -m pip "$@"; }

step "pip $PIP_VERSION, wheel, setuptools, cython, numpy, scipy (lightfm's legacy build needs them)"
pip install --quiet "pip==$PIP_VERSION" wheel setuptools cython numpy scipy

step "torch $TORCH_VERSION (CPU build)"
if ! "$vpy" -c "import torch, sys; sys.exit(torch.__version__.split('+')[0] != '$TORCH_VERSION')" 2>/dev/null; then
    pip install --quiet "torch==$TORCH_VERSION"
fi
torch_v=$("$vpy" -c "import torch; print(torch.__version__)")
cuda_v=$("$vpy" -c "import torch; print(torch.version.cuda)")
[[ "$cuda_v" == "None" ]] \
    || die "torch $torch_v is a CUDA build (cuda $cuda_v); expected the CPU wheel. Remove $VENV and check pip's find-links."

step "personae (editable, from $ROOT)"
pip install --quiet -e "$ROOT"

step "implicit, cornac 3.x"
pip install --quiet "implicit>=0.7" "cornac>=3,<4"

step "recbole $RECBOLE_VERSION (SASRec, BPR, LightGCN; run through the shims in bench/peers/recbole_models.py)"
if ! "$vpy" -c "import importlib.metadata as m, sys; sys.exit(m.version('recbole') != '$RECBOLE_VERSION')" 2>/dev/null; then
    pip install --quiet "recbole==$RECBOLE_VERSION" "torch==$TORCH_VERSION"
fi

step "lightfm $LIGHTFM_VERSION (legacy build)"
if ! "$vpy" -c "import importlib.metadata as m, sys; sys.exit(m.version('lightfm') != '$LIGHTFM_VERSION')" 2>/dev/null; then
    pip install --quiet --no-use-pep517 --no-build-isolation "lightfm==$LIGHTFM_VERSION"
fi

step "checking that everything imports, and that torch is still the CPU build"
"$vpy" - "$HERE" <<'EOF'
import importlib.metadata as md
import sys

import cornac  # noqa: F401
import cornac.models  # noqa: F401
import implicit.cpu.als  # noqa: F401  (the compiled CPU backend, not just the wrapper)
import lightfm  # noqa: F401
import personae  # noqa: F401
import torch

sys.path.insert(0, sys.argv[1])  # bench/, for the RecBole shims
from peers.recbole_models import apply_shims  # noqa: E402

apply_shims()
import recbole.config  # noqa: F401,E402
import recbole.data  # noqa: F401,E402

if torch.version.cuda is not None:
    sys.exit(f"torch {torch.__version__} was replaced by a CUDA build (cuda {torch.version.cuda})")
names = ["personae", "torch", "implicit", "cornac", "lightfm", "recbole", "numpy", "scipy",
         "threadpoolctl", "Cython", "pip"]
print(f"python {sys.version.split()[0]}")
for name in names:
    print(f"{name} {md.version(name)}")
EOF
mkdir -p "$HERE/results"
"$vpy" - > "$HERE/results/peers-versions.txt" <<'EOF'
import importlib.metadata as md, platform, sys
print(f"# bench/.venv-peers, written by bench/setup_peers.sh")
print(f"python {sys.version.split()[0]} ({platform.platform()})")
for name in ["personae", "torch", "implicit", "cornac", "lightfm", "recbole", "numpy", "scipy",
             "threadpoolctl"]:
    print(f"{name} {md.version(name)}")
EOF

step "done in $(( $(date +%s) - started )) s; versions in bench/results/peers-versions.txt"
echo "run the benchmark with: $VENV/bin/python bench/bench_models.py"
