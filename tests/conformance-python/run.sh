#!/usr/bin/env bash
# Runs the conformance tests that drive the Appwrite emulator with Appwrite's official Python SDK
# (PyPI `appwrite` 15.3.0, built for Appwrite 1.8.x), the second judge beside node-appwrite.
#
# Installs the pinned requirements into tests/conformance-python/.venv when it is missing or
# requirements.txt changed (PyPI is the only network access; later runs are offline). Needs
# python3 (3.9+) with the venv module; on Debian/Ubuntu without ensurepip this installs
# python3-venv (as root, or with sudo).
#
#   EMULATOR_BIN=target/debug/appwrite-emulator tests/conformance-python/run.sh [pytest args]
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$here/.venv"
stamp="$venv/.requirements.txt"
python="${PYTHON:-python3}"

command -v "$python" >/dev/null || { echo "error: $python is not installed" >&2; exit 1; }

if [ ! -x "$venv/bin/python" ] || ! cmp -s "$here/requirements.txt" "$stamp"; then
  echo "conformance-python: installing pinned packages into $venv"
  rm -rf "$venv"
  if ! "$python" -m venv "$venv" 2>/dev/null; then
    # Debian's python3 ships venv without ensurepip; python3-venv (matching version) adds it.
    rm -rf "$venv"
    pkg="python$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')-venv"
    echo "conformance-python: '$python -m venv' failed; installing $pkg (and python3-venv)"
    export DEBIAN_FRONTEND=noninteractive
    if [ "$(id -u)" -eq 0 ]; then sudo=""; else sudo="sudo"; fi
    $sudo apt-get update -qq
    $sudo apt-get install -y -qq "$pkg" >/dev/null 2>&1 || $sudo apt-get install -y -qq python3-venv >/dev/null
    "$python" -m venv "$venv"
  fi
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    -r "$here/requirements.txt"
  cp "$here/requirements.txt" "$stamp"
fi

export EMULATOR_BIN="${EMULATOR_BIN:-$root/target/debug/appwrite-emulator}"
[ -x "$EMULATOR_BIN" ] || [ -x "$root/$EMULATOR_BIN" ] || {
  echo "error: emulator binary not found at $EMULATOR_BIN (cargo build -p appwrite-emulator --bin appwrite-emulator)" >&2
  exit 1
}

cd "$here"
# No __pycache__ in the source tree.
export PYTHONDONTWRITEBYTECODE=1
exec "$venv/bin/python" -m pytest "$@"
