#!/bin/bash
# Prepares Triton's model repository before Triton starts (the chart's initContainer, in Triton's
# own image on the pod's GPU). It copies the repository that `steadyeye model import` wrote from
# the source volume, then for every TensorRT model (platform "tensorrt_plan"):
#   - builds 1/model.plan with the model's build_engine.sh (trtexec) for this node's GPU: engines
#     are specific to the GPU model and the TensorRT version, so they are built where they run;
#     with a cache directory, an engine is reused by ONNX checksum, GPU, and image;
#   - when the build is disabled, impossible (no GPU, no trtexec) or fails, rewrites the model's
#     config to serve its 1/model.onnx with ONNX Runtime (GPU when there is one, else CPU),
#     unless ON_FAILURE=fail.
# Environment: SRC DST ENGINE_BUILD GPU_ENABLED ON_FAILURE BUILD_TIMEOUT_S TRTEXEC
#              TRTEXEC_EXTRA_ARGS ENGINE_CACHE IMAGE_ID
set -euo pipefail

SRC=${SRC:-/model-source}
DST=${DST:-/models}
ENGINE_BUILD=${ENGINE_BUILD:-true}
GPU_ENABLED=${GPU_ENABLED:-false}
ON_FAILURE=${ON_FAILURE:-fallback}
BUILD_TIMEOUT_S=${BUILD_TIMEOUT_S:-1800}
ENGINE_CACHE=${ENGINE_CACHE:-}
IMAGE_ID=${IMAGE_ID:-unknown}
read -r -a EXTRA_ARGS <<<"${TRTEXEC_EXTRA_ARGS:-}"

log() { echo "prepare-models: $*" >&2; }

find_trtexec() {
  if [ -n "${TRTEXEC:-}" ]; then
    [ -x "$TRTEXEC" ] && echo "$TRTEXEC"
    return 0
  fi
  command -v trtexec && return 0
  [ -x /usr/src/tensorrt/bin/trtexec ] && echo /usr/src/tensorrt/bin/trtexec
  return 0
}

gpu_id() {
  # GPU model and compute capability: what an engine is specific to (with TensorRT's version,
  # which IMAGE_ID stands for).
  command -v nvidia-smi >/dev/null || return 0
  nvidia-smi --query-gpu=name,compute_cap --format=csv,noheader 2>/dev/null | head -n 1 ||
    nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -n 1 || true
}

# Serve the model's ONNX file with ONNX Runtime instead of a TensorRT engine.
to_onnxruntime() {
  local dir=$1 why=$2
  if [ ! -s "$dir/1/model.onnx" ]; then
    log "$(basename "$dir"): $why, and there is no 1/model.onnx to serve instead"
    return 1
  fi
  sed -i -E 's/^([[:space:]]*)platform:[[:space:]]*"tensorrt_plan"/\1backend: "onnxruntime"/' \
    "$dir/config.pbtxt"
  [ "$GPU_ENABLED" = true ] || sed -i 's/KIND_GPU/KIND_CPU/g' "$dir/config.pbtxt"
  rm -f "$dir/1/model.plan"
  log "$(basename "$dir"): $why; serving 1/model.onnx with ONNX Runtime on" \
    "$([ "$GPU_ENABLED" = true ] && echo GPU || echo CPU)"
}

build_engine() {
  local dir=$1 name trtexec gpu key cached out
  name=$(basename "$dir")
  [ -f "$dir/build_engine.sh" ] || { log "$name: no build_engine.sh"; return 1; }
  [ -s "$dir/1/model.onnx" ] || { log "$name: no 1/model.onnx"; return 1; }
  trtexec=$(find_trtexec)
  [ -n "$trtexec" ] || { log "$name: trtexec not found (PATH, /usr/src/tensorrt/bin)"; return 1; }
  gpu=$(gpu_id)
  key=$({
    sha256sum <"$dir/1/model.onnx"
    sha256sum <"$dir/build_engine.sh"
    echo "$gpu" "$IMAGE_ID" "${EXTRA_ARGS[*]}"
  } | sha256sum | cut -c1-16)
  cached=""
  if [ -n "$ENGINE_CACHE" ] && [ -n "$gpu" ]; then
    cached="$ENGINE_CACHE/$name-$key.plan"
    if [ -s "$cached" ]; then
      cp "$cached" "$dir/1/model.plan"
      log "$name: engine for ${gpu} from the cache ($cached)"
      return 0
    fi
  fi
  log "$name: building the TensorRT engine for ${gpu:-this GPU} with $trtexec" \
    "(at most ${BUILD_TIMEOUT_S}s)"
  rm -f "$dir/1/model.plan"
  out="${TMPDIR:-/tmp}/trtexec-$name.log"
  local started=$SECONDS
  if PATH="$(dirname "$trtexec"):$PATH" timeout "$BUILD_TIMEOUT_S" \
    bash "$dir/build_engine.sh" "${EXTRA_ARGS[@]}" >"$out" 2>&1 && [ -s "$dir/1/model.plan" ]; then
    log "$name: engine built in $((SECONDS - started))s"
    if [ -n "$cached" ]; then
      # Write under a temporary name, then rename: a replica starting at the same moment never
      # reads half an engine.
      if ! { cp "$dir/1/model.plan" "$cached.tmp.$$" && mv -f "$cached.tmp.$$" "$cached"; }; then
        log "$name: could not store the engine in the cache (continuing)"
      fi
    fi
    return 0
  fi
  log "$name: trtexec failed after $((SECONDS - started))s; its last lines:"
  tail -n 30 "$out" >&2 || true
  rm -f "$dir/1/model.plan"
  return 1
}

[ -d "$SRC" ] || { log "no model repository at $SRC"; exit 1; }
mkdir -p "$DST"
find "$DST" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
# Visible entries only: `steadyeye model import` stages a model in a dot-directory first.
found=0
for entry in "$SRC"/*; do
  [ -e "$entry" ] || continue
  cp -R "$entry" "$DST"/
  found=1
done
[ "$found" = 1 ] || { log "the model repository at $SRC is empty"; exit 1; }
chmod -R u+w "$DST"

status=0
for config in "$DST"/*/config.pbtxt; do
  [ -f "$config" ] || continue
  dir=$(dirname "$config")
  name=$(basename "$dir")
  if ! grep -Eq '^[[:space:]]*platform:[[:space:]]*"tensorrt_plan"' "$config"; then
    if [ "$GPU_ENABLED" != true ] && grep -q KIND_GPU "$config"; then
      sed -i 's/KIND_GPU/KIND_CPU/g' "$config"
      log "$name: no GPU in this pod; its instances run on CPU"
    fi
    log "$name: $(grep -Eo '(backend|platform):[[:space:]]*"[^"]*"' "$config" | head -n 1), as is"
    continue
  fi
  if [ "$GPU_ENABLED" != true ]; then
    to_onnxruntime "$dir" "no GPU in this pod" || status=1
  elif [ "$ENGINE_BUILD" = true ]; then
    if ! build_engine "$dir"; then
      if [ "$ON_FAILURE" = fail ]; then
        log "$name: engine build failed and triton.engineBuild.onFailure is fail"
        status=1
      else
        to_onnxruntime "$dir" "no TensorRT engine" || status=1
      fi
    fi
  elif [ -s "$dir/1/model.plan" ]; then
    log "$name: engine build disabled; serving the repository's own 1/model.plan (it must" \
      "have been built for this GPU model and this image's TensorRT)"
  else
    to_onnxruntime "$dir" "engine build disabled and no 1/model.plan" || status=1
  fi
done
exit "$status"
