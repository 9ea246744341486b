from steadyeye.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Detection(_message.Message):
    __slots__ = ("box", "score", "class_id", "class_name")
    BOX_FIELD_NUMBER: _ClassVar[int]
    SCORE_FIELD_NUMBER: _ClassVar[int]
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    CLASS_NAME_FIELD_NUMBER: _ClassVar[int]
    box: _common_pb2.BoundingBox
    score: float
    class_id: int
    class_name: str
    def __init__(self, box: _Optional[_Union[_common_pb2.BoundingBox, _Mapping]] = ..., score: _Optional[float] = ..., class_id: _Optional[int] = ..., class_name: _Optional[str] = ...) -> None: ...

class ModelRef(_message.Message):
    __slots__ = ("name", "version")
    NAME_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    name: str
    version: str
    def __init__(self, name: _Optional[str] = ..., version: _Optional[str] = ...) -> None: ...

class Detections(_message.Message):
    __slots__ = ("ref", "model", "detections", "quality", "candidates")
    REF_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.FrameRef
    model: ModelRef
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    quality: _common_pb2.FrameQuality
    candidates: _containers.RepeatedCompositeFieldContainer[Detection]
    def __init__(self, ref: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., quality: _Optional[_Union[_common_pb2.FrameQuality, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ...) -> None: ...
