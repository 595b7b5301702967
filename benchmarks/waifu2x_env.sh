#!/usr/bin/env bash
# Create, or reuse, a separate virtual environment holding the waifu2x Chainer port from PyPI.
#
# waifu2x==2024.0.1 needs Python < 3.12, numpy < 2, Pillow < 11 and chainer 7, none of which may
# enter our own environment (.venv uses numpy 2). It lives in its own venv and is only ever called
# as a subprocess by benchmarks/compare_waifu2x.py through benchmarks/waifu2x_runner.py.
#
# Usage:  benchmarks/waifu2x_env.sh [VENV_DIR]        (default: .venv-waifu2x in the repo root)
# Env:    WAIFU2X_PYTHON   interpreter to build the venv from (default: the first python3.11,
#                          python3.10 or python3.9 found, preferring /usr/bin)
# Prints the venv's python path on its last line. Idempotent: an existing venv that already
# imports the pinned versions is reused untouched; a broken one is rebuilt.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${1:-$REPO/.venv-waifu2x}"
PINS=("waifu2x==2024.0.1" "chainer>=7,<8" "numpy>=1.21,<2" "Pillow>=9,<11")

log() { echo "[waifu2x_env] $*" >&2; }

pick_python() {
    if [ -n "${WAIFU2X_PYTHON:-}" ]; then echo "$WAIFU2X_PYTHON"; return; fi
    local c
    for c in /usr/bin/python3.11 /usr/bin/python3.10 /usr/bin/python3.9 python3.11 python3.10 python3.9; do
        if command -v "$c" >/dev/null 2>&1; then command -v "$c"; return; fi
    done
    log "no Python 3.9-3.11 found (waifu2x 2024.0.1 with chainer 7 needs Python < 3.12); set WAIFU2X_PYTHON"
    exit 2
}

check_venv() {
    # Succeeds only if the pinned packages import and the bundled resnet10/vgg7 models are present.
    "$VENV/bin/python" - <<'EOF'
import importlib.metadata as md, os, sys
import chainer, numpy, PIL, waifu2x
assert md.version("waifu2x") == "2024.0.1", md.version("waifu2x")
assert chainer.__version__.startswith("7."), chainer.__version__
assert int(numpy.__version__.split(".")[0]) < 2, numpy.__version__
assert int(PIL.__version__.split(".")[0]) < 11, PIL.__version__
root = os.path.dirname(waifu2x.__file__)
for arch in ("resnet10", "vgg7"):
    for n in range(4):
        p = os.path.join(root, "models", arch, f"anime_style_noise{n}_y.npz")
        assert os.path.isfile(p), p
print(f"python {sys.version.split()[0]}, waifu2x {md.version('waifu2x')}, chainer {chainer.__version__}, "
      f"numpy {numpy.__version__}, Pillow {PIL.__version__}")
EOF
}

if [ -x "$VENV/bin/python" ] && check_venv >&2 2>/dev/null; then
    log "reusing $VENV"
    echo "$VENV/bin/python"
    exit 0
fi

PY="$(pick_python)"
ver="$("$PY" -c 'import sys; print("%d.%d" % sys.version_info[:2])')"
case "$ver" in
    3.9|3.10|3.11) ;;
    *) log "$PY is Python $ver; waifu2x 2024.0.1 with chainer 7 needs 3.9-3.11"; exit 2 ;;
esac

if [ -d "$VENV" ]; then
    log "removing broken or incomplete venv $VENV"
    rm -rf "$VENV"
fi
log "creating $VENV with $PY (Python $ver)"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
# chainer 7 ships only as an sdist whose setup.py imports pkg_resources, which recent setuptools
# dropped: install an older setuptools first and build chainer against it (no build isolation).
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "setuptools>=60,<70" wheel
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-build-isolation "${PINS[@]}"
check_venv >&2 || { log "the new venv does not import the pinned packages"; exit 1; }
echo "$VENV/bin/python"
