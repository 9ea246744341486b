from steadyeye.v1 import common_pb2 as _common_pb2
from steadyeye.v1 import detections_pb2 as _detections_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class DriftState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DRIFT_STATE_UNSPECIFIED: _ClassVar[DriftState]
    DRIFT_STATE_STARTED: _ClassVar[DriftState]
    DRIFT_STATE_ENDED: _ClassVar[DriftState]
DRIFT_STATE_UNSPECIFIED: DriftState
DRIFT_STATE_STARTED: DriftState
DRIFT_STATE_ENDED: DriftState

class SignalDrift(_message.Message):
    __slots__ = ("name", "statistic", "threshold", "value", "reference", "scale")
    NAME_FIELD_NUMBER: _ClassVar[int]
    STATISTIC_FIELD_NUMBER: _ClassVar[int]
    THRESHOLD_FIELD_NUMBER: _ClassVar[int]
    VALUE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    name: str
    statistic: float
    threshold: float
    value: float
    reference: float
    scale: float
    def __init__(self, name: _Optional[str] = ..., statistic: _Optional[float] = ..., threshold: _Optional[float] = ..., value: _Optional[float] = ..., reference: _Optional[float] = ..., scale: _Optional[float] = ...) -> None: ...

class DriftEvent(_message.Message):
    __slots__ = ("event_id", "state", "ref", "signals", "also_moving", "reference_id", "model", "episode_start_frame_id", "note")
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    REF_FIELD_NUMBER: _ClassVar[int]
    SIGNALS_FIELD_NUMBER: _ClassVar[int]
    ALSO_MOVING_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    EPISODE_START_FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    NOTE_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    state: DriftState
    ref: _common_pb2.FrameRef
    signals: _containers.RepeatedCompositeFieldContainer[SignalDrift]
    also_moving: _containers.RepeatedScalarFieldContainer[str]
    reference_id: str
    model: _detections_pb2.ModelRef
    episode_start_frame_id: int
    note: str
    def __init__(self, event_id: _Optional[str] = ..., state: _Optional[_Union[DriftState, str]] = ..., ref: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., signals: _Optional[_Iterable[_Union[SignalDrift, _Mapping]]] = ..., also_moving: _Optional[_Iterable[str]] = ..., reference_id: _Optional[str] = ..., model: _Optional[_Union[_detections_pb2.ModelRef, _Mapping]] = ..., episode_start_frame_id: _Optional[int] = ..., note: _Optional[str] = ...) -> None: ...
