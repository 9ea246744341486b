import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from steadyeye.v1 import detections_pb2 as _detections_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ServingStep(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SERVING_STEP_UNSPECIFIED: _ClassVar[ServingStep]
    SERVING_STEP_DEGRADED: _ClassVar[ServingStep]
    SERVING_STEP_REASON_CHANGED: _ClassVar[ServingStep]
    SERVING_STEP_RAMPING: _ClassVar[ServingStep]
    SERVING_STEP_RECOVERED: _ClassVar[ServingStep]
SERVING_STEP_UNSPECIFIED: ServingStep
SERVING_STEP_DEGRADED: ServingStep
SERVING_STEP_REASON_CHANGED: ServingStep
SERVING_STEP_RAMPING: ServingStep
SERVING_STEP_RECOVERED: ServingStep

class ServingEvent(_message.Message):
    __slots__ = ("event_id", "model", "replica", "step", "from_tier", "to_tier", "reason", "time", "primary_share", "evidence", "detail")
    class EvidenceEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    EVENT_ID_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    REPLICA_FIELD_NUMBER: _ClassVar[int]
    STEP_FIELD_NUMBER: _ClassVar[int]
    FROM_TIER_FIELD_NUMBER: _ClassVar[int]
    TO_TIER_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    PRIMARY_SHARE_FIELD_NUMBER: _ClassVar[int]
    EVIDENCE_FIELD_NUMBER: _ClassVar[int]
    DETAIL_FIELD_NUMBER: _ClassVar[int]
    event_id: str
    model: str
    replica: str
    step: ServingStep
    from_tier: str
    to_tier: str
    reason: _detections_pb2.DegradedReason
    time: _timestamp_pb2.Timestamp
    primary_share: float
    evidence: _containers.ScalarMap[str, float]
    detail: str
    def __init__(self, event_id: _Optional[str] = ..., model: _Optional[str] = ..., replica: _Optional[str] = ..., step: _Optional[_Union[ServingStep, str]] = ..., from_tier: _Optional[str] = ..., to_tier: _Optional[str] = ..., reason: _Optional[_Union[_detections_pb2.DegradedReason, str]] = ..., time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., primary_share: _Optional[float] = ..., evidence: _Optional[_Mapping[str, float]] = ..., detail: _Optional[str] = ...) -> None: ...
