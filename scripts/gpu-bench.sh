#!/usr/bin/env bash
# On a machine with an NVIDIA GPU, Docker and the NVIDIA container toolkit: import the model for
# TensorRT, build the engine for this GPU (FP16, batch 1..8) inside NVIDIA's Triton image, serve
# it, and run `steadyeye bench pipeline` against it (the rest of the stack stays embedded).
#
#   scripts/gpu-bench.sh [FRAMES]   # default 300; env: TRITON_IMAGE, TRT_IMAGE, STEADYEYE_MODEL_*
# The engine is built with trtexec from the TensorRT image of the same release as the Triton
# image (same TensorRT version: engines are not portable across versions or GPUs).
set -euo pipefail
cd "$(dirname "$0")/.."
FRAMES=${1:-300}
IMAGE=${TRITON_IMAGE:-nvcr.io/nvidia/tritonserver:24.10-py3}
TRT_IMAGE=${TRT_IMAGE:-nvcr.io/nvidia/tensorrt:24.10-py3}
REPO=$PWD/.steadyeye/gpu-model-repository
NAME=yolox_nano
PORT=${TRITON_GRPC_PORT:-18001}

make setup >/dev/null
MODEL=$(.venv/bin/python -c 'from steadyeye.assets import ModelSettings, model_file
from services.core.settings import load
print(model_file(load(ModelSettings)))')
rm -rf "$REPO" && mkdir -p "$REPO"
.venv/bin/steadyeye model import "$MODEL" --family yolox --name "$NAME" \
  --repository "$REPO" --target tensorrt --max-batch-size 8

echo "building the TensorRT engine in $TRT_IMAGE ..."
docker run --rm --gpus all -v "$REPO:/models" "$TRT_IMAGE" \
  bash -c "PATH=\$PATH:/usr/src/tensorrt/bin sh /models/$NAME/build_engine.sh"

container=$(docker run -d --rm --gpus all -p "127.0.0.1:$PORT:8001" -v "$REPO:/models" "$IMAGE" \
  tritonserver --model-repository=/models)
trap 'docker stop "$container" >/dev/null' EXIT
for _ in $(seq 120); do
  docker exec "$container" curl -sf "localhost:8000/v2/models/$NAME/ready" >/dev/null && break
  sleep 1
done
docker exec "$container" curl -sf "localhost:8000/v2/models/$NAME/ready" >/dev/null \
  || { docker logs "$container" | tail -30; exit 1; }

STEADYEYE_STACK_TRITON_URL=127.0.0.1:$PORT STEADYEYE_MODEL_NAME=$NAME \
  .venv/bin/steadyeye bench pipeline --frames "$FRAMES" | tee gpu-bench.json
