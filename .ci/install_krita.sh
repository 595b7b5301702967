#!/usr/bin/env bash
# Install Krita (Debian 12: Krita 5.1.5 with Python 3.11) plus what the Krita end-to-end tests need:
# PyQt5 for the system python3, and Xvfb/xauth for the GUI check and the dialog screenshot.
# Idempotent: does nothing when everything is already installed. Needs root (or sudo) and apt.
set -euo pipefail

need=()
if ! command -v krita >/dev/null 2>&1 || ! command -v kritarunner >/dev/null 2>&1; then need+=(krita); fi
command -v xvfb-run >/dev/null 2>&1 || need+=(xvfb)
command -v xauth >/dev/null 2>&1 || need+=(xauth)
dpkg -s python3-pyqt5 >/dev/null 2>&1 || need+=(python3-pyqt5)
dpkg -s python3-sip >/dev/null 2>&1 || need+=(python3-sip)

if [ ${#need[@]} -eq 0 ]; then
    echo "install_krita: krita, kritarunner, xvfb-run, python3-pyqt5 already present"
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
# Refresh package lists only when they are missing (first run on a bare image).
if [ -z "$(ls -A /var/lib/apt/lists 2>/dev/null | grep -v -e lock -e partial)" ]; then
    $SUDO apt-get update
fi
if ! $SUDO apt-get install -y --no-install-recommends "${need[@]}"; then
    $SUDO apt-get update
    $SUDO apt-get install -y --no-install-recommends "${need[@]}"
fi
echo "install_krita: installed ${need[*]}"
