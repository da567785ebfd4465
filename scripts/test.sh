#!/usr/bin/env bash
# Set up a fresh Debian machine (as root, Python 3.11) and run the whole suite:
# lint, type check and tests, Redis-backed tests against a real redis-server,
# the documentation site built strictly, the built wheel installed and smoke-tested,
# CORS tests in a real headless Chromium.
# This is the README's test command; .ci/run runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."

# System programs the tests drive for real.
need_apt=()
command -v redis-server >/dev/null 2>&1 || [ -x /usr/bin/redis-server ] || need_apt+=(redis-server)
command -v redis-cli >/dev/null 2>&1 || [ -x /usr/bin/redis-cli ] || need_apt+=(redis-tools)
# Headless Chromium and its driver for the end-to-end CORS tests (never downloaded by Selenium).
command -v chromium >/dev/null 2>&1 || [ -x /usr/bin/chromium ] || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || [ -x /usr/bin/chromedriver ] || need_apt+=(chromium-driver)
if [ "${#need_apt[@]}" -gt 0 ]; then
    echo "==> installing ${need_apt[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends "${need_apt[@]}"
fi

PYTHON="${PYTHON:-python3}"
# A private virtualenv that holds nox; nox builds one per session from pyproject.toml.
if [ ! -x .venv-tools/bin/nox ]; then
    echo "==> creating .venv-tools with nox"
    "$PYTHON" -m venv .venv-tools
    .venv-tools/bin/python -m pip install -q --disable-pip-version-check 'nox>=2024.4.15'
fi

exec .venv-tools/bin/nox --no-color -s lint typecheck tests docs "$@"
