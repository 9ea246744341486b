from steadyeye.v1 import common_pb2 as _common_pb2
from steadyeye.v1 import detections_pb2 as _detections_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TrackState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TRACK_STATE_UNSPECIFIED: _ClassVar[TrackState]
    TRACK_STATE_STARTED: _ClassVar[TrackState]
    TRACK_STATE_UPDATED: _ClassVar[TrackState]
    TRACK_STATE_ENDED: _ClassVar[TrackState]
    TRACK_STATE_COASTED: _ClassVar[TrackState]
TRACK_STATE_UNSPECIFIED: TrackState
TRACK_STATE_STARTED: TrackState
TRACK_STATE_UPDATED: TrackState
TRACK_STATE_ENDED: TrackState
TRACK_STATE_COASTED: TrackState

class Track(_message.Message):
    __slots__ = ("track_id", "state", "detection", "box")
    TRACK_ID_FIELD_NUMBER: _ClassVar[int]
    STATE_FIELD_NUMBER: _ClassVar[int]
    DETECTION_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    track_id: int
    state: TrackState
    detection: _detections_pb2.Detection
    box: _common_pb2.BoundingBox
    def __init__(self, track_id: _Optional[int] = ..., state: _Optional[_Union[TrackState, str]] = ..., detection: _Optional[_Union[_detections_pb2.Detection, _Mapping]] = ..., box: _Optional[_Union[_common_pb2.BoundingBox, _Mapping]] = ...) -> None: ...

class Tracks(_message.Message):
    __slots__ = ("ref", "tracks", "quality")
    REF_FIELD_NUMBER: _ClassVar[int]
    TRACKS_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.FrameRef
    tracks: _containers.RepeatedCompositeFieldContainer[Track]
    quality: _common_pb2.FrameQuality
    def __init__(self, ref: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., tracks: _Optional[_Iterable[_Union[Track, _Mapping]]] = ..., quality: _Optional[_Union[_common_pb2.FrameQuality, _Mapping]] = ...) -> None: ...
