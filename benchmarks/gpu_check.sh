#!/usr/bin/env bash
# The prepared GPU check: from a fresh copy of this repository on a machine with NVIDIA GPUs, sets up a Python with
# voxface, then runs benchmarks/gpu_check.py (what it measures: its docstring), which writes one JSON.
#
#   bash benchmarks/gpu_check.sh [--out FILE] [--fraction F] [--budget SECONDS] [--dry-run]
#   bash benchmarks/gpu_check.sh --fetch-wheels      # beforehand, where a package registry answers (see 4. below)
#
# Default output: runs/gpu_check/gpu_check.json (the tree, stores and runs beside it). Exit 0: every section
# measured; 1: some failed (named in the JSON's "errors"); 2: no CUDA GPU (one line; --dry-run runs every section at
# toy size on the CPU instead).
#
# The Python it runs is the first of these that imports what the check needs (and sees a GPU, unless --dry-run):
#   1. $VOXFACE_PYTHON, when set;
#   2. .venv/bin/python, the environment `make` makes;
#   3. where a package registry answers: the Makefile's own rule, `make .venv/.installed` (torch==2.13.0, a CUDA
#      build from the registry on a Linux GPU machine, then voxface[dev]);
#   4. offline: the machine's own python3 (its CUDA torch, Lightning, transformers), with the wheels in .whl/
#      installed into .gpu-site (on the path). `--fetch-wheels` fetches into .whl/ the wheels of voxface's
#      requirements that a PyTorch image usually lacks (for CPython 3.12 on x86-64 Linux; PYTHON_VERSION sets
#      another); copy .whl/ along with the repository.
# voxface itself is always this checkout's src/ (PYTHONPATH), as an editable install would give.
set -euo pipefail
cd "$(dirname "$0")/.."
REPO=$PWD
WHEELS=(soundfile cffi pycparser soxr POT pytorch-metric-learning)

if [[ "${1:-}" == "--fetch-wheels" ]]; then
    python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version "${PYTHON_VERSION:-3.12}" \
        --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl "${WHEELS[@]}"
    echo "gpu_check: wheels in $REPO/.whl: $(ls .whl | tr '\n' ' ')"
    exit 0
fi
DRY=0
for arg in "$@"; do [[ "$arg" == "--dry-run" ]] && DRY=1; done
export PYTHONPATH="$REPO/src${PYTHONPATH:+:$PYTHONPATH}"
if [[ $DRY == 0 ]] && ! { command -v nvidia-smi >/dev/null && nvidia-smi -L 2>/dev/null | grep -q GPU; }; then
    echo "gpu_check: no NVIDIA GPU here (nvidia-smi lists none); run it on a machine with one, or pass --dry-run" \
         "for the toy-size run on the CPU" >&2
    exit 2
fi

# Whether $1 has what the check needs (found, not imported: importing is the check's own start-up) and, unless
# --dry-run, a torch that sees a CUDA GPU; prints what is missing.
usable() {
    [[ -x "$1" ]] || command -v "$1" >/dev/null 2>&1 || return 1
    "$1" - "$DRY" <<'EOF'
import importlib.util, sys
for name in ("torch", "lightning", "transformers", "numpy", "soundfile", "soxr", "PIL", "yaml", "sklearn", "ot",
             "matplotlib", "pytorch_metric_learning", "voxface"):
    if importlib.util.find_spec(name) is None:
        sys.exit(f"{name} is missing")
if sys.argv[1] == "0":
    import torch
    if not torch.cuda.is_available():
        sys.exit(f"torch {torch.__version__} sees no CUDA GPU")
EOF
}

PY=""
if [[ -n "${VOXFACE_PYTHON:-}" ]] && usable "$VOXFACE_PYTHON" 2>/dev/null; then
    PY=$VOXFACE_PYTHON
elif usable .venv/bin/python 2>/dev/null; then
    PY=.venv/bin/python
else
    probe=$(mktemp -d)
    if command -v make >/dev/null && python3 -m pip download --quiet --no-deps --timeout 5 --retries 0 -d "$probe" \
            pyyaml >/dev/null 2>&1; then
        echo "gpu_check: setting up .venv with the Makefile's rule (make .venv/.installed)"
        make -s .venv/.installed && usable .venv/bin/python 2>/dev/null && PY=.venv/bin/python
    fi
    rm -rf "$probe"
    if [[ -z "$PY" ]]; then  # the machine's own python3, with the wheels of .whl/ in .gpu-site beside it
        echo "gpu_check: using $(command -v python3) (offline: its own torch; .whl/ installed into .gpu-site)"
        if compgen -G ".whl/*.whl" >/dev/null; then
            PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --no-index --no-deps --no-compile --upgrade \
                --target .gpu-site .whl/*.whl
            export PYTHONPATH="$PYTHONPATH:$REPO/.gpu-site"
        fi
        if why=$(usable python3 2>&1); then
            PY=python3
        else
            echo "gpu_check: no Python with what voxface needs: ${why##*$'\n'}; on a machine without a" \
                 "package registry, run 'bash benchmarks/gpu_check.sh --fetch-wheels' where there is one and" \
                 "copy .whl/ here" >&2
            exit 2
        fi
    fi
fi
echo "gpu_check: running with $PY"
exec env PYTHONUNBUFFERED=1 "$PY" benchmarks/gpu_check.py "$@"
