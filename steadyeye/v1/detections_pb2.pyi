from steadyeye.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DegradedReason(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DEGRADED_REASON_UNSPECIFIED: _ClassVar[DegradedReason]
    DEGRADED_REASON_LATENCY: _ClassVar[DegradedReason]
    DEGRADED_REASON_UNAVAILABLE: _ClassVar[DegradedReason]
    DEGRADED_REASON_QUEUE_FULL: _ClassVar[DegradedReason]
    DEGRADED_REASON_OUT_OF_MEMORY: _ClassVar[DegradedReason]
DEGRADED_REASON_UNSPECIFIED: DegradedReason
DEGRADED_REASON_LATENCY: DegradedReason
DEGRADED_REASON_UNAVAILABLE: DegradedReason
DEGRADED_REASON_QUEUE_FULL: DegradedReason
DEGRADED_REASON_OUT_OF_MEMORY: DegradedReason

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
    __slots__ = ("ref", "model", "detections", "quality", "candidates", "degraded", "degraded_reason", "tier")
    REF_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    DETECTIONS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    CANDIDATES_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_FIELD_NUMBER: _ClassVar[int]
    DEGRADED_REASON_FIELD_NUMBER: _ClassVar[int]
    TIER_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.FrameRef
    model: ModelRef
    detections: _containers.RepeatedCompositeFieldContainer[Detection]
    quality: _common_pb2.FrameQuality
    candidates: _containers.RepeatedCompositeFieldContainer[Detection]
    degraded: bool
    degraded_reason: DegradedReason
    tier: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., model: _Optional[_Union[ModelRef, _Mapping]] = ..., detections: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., quality: _Optional[_Union[_common_pb2.FrameQuality, _Mapping]] = ..., candidates: _Optional[_Iterable[_Union[Detection, _Mapping]]] = ..., degraded: _Optional[bool] = ..., degraded_reason: _Optional[_Union[DegradedReason, str]] = ..., tier: _Optional[str] = ...) -> None: ...
