import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RolloutMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_MODE_UNSPECIFIED: _ClassVar[RolloutMode]
    ROLLOUT_MODE_SHADOW: _ClassVar[RolloutMode]
    ROLLOUT_MODE_CANARY: _ClassVar[RolloutMode]

class RolloutStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    ROLLOUT_STEP_UNSPECIFIED: _ClassVar[RolloutStep]
    ROLLOUT_STEP_STARTED: _ClassVar[RolloutStep]
    ROLLOUT_STEP_PROMOTED: _ClassVar[RolloutStep]
    ROLLOUT_STEP_ROLLED_BACK: _ClassVar[RolloutStep]
    ROLLOUT_STEP_ABORTED: _ClassVar[RolloutStep]
    ROLLOUT_STEP_EVALUATED: _ClassVar[RolloutStep]
ROLLOUT_MODE_UNSPECIFIED: RolloutMode
ROLLOUT_MODE_SHADOW: RolloutMode
ROLLOUT_MODE_CANARY: RolloutMode
ROLLOUT_STEP_UNSPECIFIED: RolloutStep
ROLLOUT_STEP_STARTED: RolloutStep
ROLLOUT_STEP_PROMOTED: RolloutStep
ROLLOUT_STEP_ROLLED_BACK: RolloutStep
ROLLOUT_STEP_ABORTED: RolloutStep
ROLLOUT_STEP_EVALUATED: RolloutStep

class RolloutEvent(_message.Message):
    __slots__ = ("rollout_id", "model", "serving_version", "candidate_version", "mode", "percent", "step", "reason", "time", "evidence", "failed_gates")
    class EvidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    ROLLOUT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVING_VERSION_FIELD_NUMBER: _ClassVar[int]
    CANDIDATE_VERSION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    PERCENT_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    FAILED_GATES_FIELD_NUMBER: _ClassVar[int]
    rollout_id: str
    model: str
    serving_version: str
    candidate_version: str
    mode: RolloutMode
    percent: float
    step: RolloutStep
    reason: str
    time: _timestamp_pb2.Timestamp
    evidence: _containers.ScalarMap[str, float]
    failed_gates: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, rollout_id: _Optional[str] = ..., model: _Optional[str] = ..., serving_version: _Optional[str] = ..., candidate_version: _Optional[str] = ..., mode: _Optional[_Union[RolloutMode, str]] = ..., percent: _Optional[float] = ..., step: _Optional[_Union[RolloutStep, str]] = ..., reason: _Optional[str] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., evidence: _Optional[_Mapping[str, float]] = ..., failed_gates: _Optional[_Iterable[str]] = ...) -> None: ...
