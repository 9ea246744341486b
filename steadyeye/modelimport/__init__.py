"""`steadyeye model import`: a user's YOLO ONNX export -> a Triton model that takes uint8
letterboxed frames and returns final detections (decode and NMS inside the graph)."""

from steadyeye.modelimport.batch import make_batch_dynamic
from steadyeye.modelimport.coco import COCO80
from steadyeye.modelimport.errors import ModelImportError
from steadyeye.modelimport.families import FAMILIES, Family, get_family
from steadyeye.modelimport.fuse import OUTPUTS, fuse
from steadyeye.modelimport.repository import TARGETS, import_model, load, model_config

__all__ = [
    "COCO80",
    "FAMILIES",
    "OUTPUTS",
    "TARGETS",
    "Family",
    "ModelImportError",
    "fuse",
    "get_family",
    "import_model",
    "load",
    "make_batch_dynamic",
    "model_config",
]
