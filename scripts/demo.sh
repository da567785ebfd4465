#!/usr/bin/env bash
# Install apisec with its demo extra into .venv and start the demo API and its page.
# This is the README's first quick-start command: on a fresh Debian machine (as root,
# Python 3.11) from a clone of the repository. Arguments go to `apisec demo`
# (--port 8000, --web-port 8001, --host 127.0.0.1, --redis URL). Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON="${PYTHON:-python3}"
# Debian ships the venv module separately (python3-venv).
if ! "$PYTHON" -c 'import ensurepip, venv' >/dev/null 2>&1; then
    echo "==> installing python3-venv"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends python3-venv
fi
if [ ! -x .venv/bin/python ]; then
    echo "==> creating .venv"
    "$PYTHON" -m venv .venv
fi
echo "==> installing apisec[demo] into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[demo]'
exec .venv/bin/apisec demo "$@"
