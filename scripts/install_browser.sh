#!/usr/bin/env bash
# Install what the browser tests (tests/browser) need: Debian's chromium and the playwright
# Python package. Idempotent: installs only what is missing, and says what it did.
#
#   scripts/install_browser.sh            # uses .venv/bin/python if present, else python3
#   PYTHON=/path/to/python scripts/install_browser.sh
#
# Playwright's own browser download (`playwright install`) is NOT used: the tests drive the
# system chromium through executable_path=/usr/bin/chromium, so nothing is fetched from outside
# the package registries (Debian and PyPI).
set -euo pipefail

cd "$(dirname "$0")/.."
CHROMIUM=/usr/bin/chromium
if [[ -z "${PYTHON:-}" ]]; then
    if [[ -x .venv/bin/python ]]; then PYTHON=.venv/bin/python; else PYTHON=python3; fi
fi

if [[ -x "$CHROMIUM" ]]; then
    echo "install_browser: chromium already installed ($("$CHROMIUM" --version 2>/dev/null | head -n1 || echo "$CHROMIUM"))"
else
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "install_browser: $CHROMIUM is missing and apt-get is not available; install Chromium by hand" >&2
        exit 1
    fi
    SUDO=""
    if [[ "$(id -u)" != "0" ]]; then
        if command -v sudo >/dev/null 2>&1; then SUDO="sudo"; else
            echo "install_browser: need root (or sudo) to apt-get install chromium" >&2
            exit 1
        fi
    fi
    echo "install_browser: installing Debian's chromium with apt-get"
    $SUDO apt-get update -q
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q chromium
    echo "install_browser: installed $("$CHROMIUM" --version 2>/dev/null | head -n1 || echo chromium)"
fi

if "$PYTHON" -c "import playwright.sync_api" >/dev/null 2>&1; then
    echo "install_browser: playwright already installed for $PYTHON ($("$PYTHON" -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p'))"
else
    echo "install_browser: installing the playwright package into $PYTHON"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "playwright>=1.45"
    echo "install_browser: installed playwright $("$PYTHON" -m pip show playwright 2>/dev/null | sed -n 's/^Version: //p')"
fi
