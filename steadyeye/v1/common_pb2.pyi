import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class FrameRef(_message.Message):
    __slots__ = ("camera_id", "frame_id", "capture_time", "width", "height")
    CAMERA_ID_FIELD_NUMBER: _ClassVar[int]
    FRAME_ID_FIELD_NUMBER: _ClassVar[int]
    CAPTURE_TIME_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    camera_id: str
    frame_id: int
    capture_time: _timestamp_pb2.Timestamp
    width: int
    height: int
    def __init__(self, camera_id: _Optional[str] = ..., frame_id: _Optional[int] = ..., capture_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., width: _Optional[int] = ..., height: _Optional[int] = ...) -> None: ...

class ClaimCheck(_message.Message):
    __slots__ = ("key", "size_bytes")
    KEY_FIELD_NUMBER: _ClassVar[int]
    SIZE_BYTES_FIELD_NUMBER: _ClassVar[int]
    key: str
    size_bytes: int
    def __init__(self, key: _Optional[str] = ..., size_bytes: _Optional[int] = ...) -> None: ...

class Payload(_message.Message):
    __slots__ = ("inline", "claim_check")
    INLINE_FIELD_NUMBER: _ClassVar[int]
    CLAIM_CHECK_FIELD_NUMBER: _ClassVar[int]
    inline: bytes
    claim_check: ClaimCheck
    def __init__(self, inline: _Optional[bytes] = ..., claim_check: _Optional[_Union[ClaimCheck, _Mapping]] = ...) -> None: ...

class BoundingBox(_message.Message):
    __slots__ = ("x1", "y1", "x2", "y2")
    X1_FIELD_NUMBER: _ClassVar[int]
    Y1_FIELD_NUMBER: _ClassVar[int]
    X2_FIELD_NUMBER: _ClassVar[int]
    Y2_FIELD_NUMBER: _ClassVar[int]
    x1: float
    y1: float
    x2: float
    y2: float
    def __init__(self, x1: _Optional[float] = ..., y1: _Optional[float] = ..., x2: _Optional[float] = ..., y2: _Optional[float] = ...) -> None: ...

class FrameQuality(_message.Message):
    __slots__ = ("brightness", "contrast", "sharpness", "frozen", "motion", "saturation", "hue_hist", "dark_share", "bright_share", "flat_cell_share", "fine_flat_share", "edge_grid", "thumbnail")
    BRIGHTNESS_FIELD_NUMBER: _ClassVar[int]
    CONTRAST_FIELD_NUMBER: _ClassVar[int]
    SHARPNESS_FIELD_NUMBER: _ClassVar[int]
    FROZEN_FIELD_NUMBER: _ClassVar[int]
    MOTION_FIELD_NUMBER: _ClassVar[int]
    SATURATION_FIELD_NUMBER: _ClassVar[int]
    HUE_HIST_FIELD_NUMBER: _ClassVar[int]
    DARK_SHARE_FIELD_NUMBER: _ClassVar[int]
    BRIGHT_SHARE_FIELD_NUMBER: _ClassVar[int]
    FLAT_CELL_SHARE_FIELD_NUMBER: _ClassVar[int]
    FINE_FLAT_SHARE_FIELD_NUMBER: _ClassVar[int]
    EDGE_GRID_FIELD_NUMBER: _ClassVar[int]
    THUMBNAIL_FIELD_NUMBER: _ClassVar[int]
    brightness: float
    contrast: float
    sharpness: float
    frozen: bool
    motion: float
    saturation: float
    hue_hist: _containers.RepeatedScalarFieldContainer[float]
    dark_share: float
    bright_share: float
    flat_cell_share: float
    fine_flat_share: float
    edge_grid: bytes
    thumbnail: bytes
    def __init__(self, brightness: _Optional[float] = ..., contrast: _Optional[float] = ..., sharpness: _Optional[float] = ..., frozen: _Optional[bool] = ..., motion: _Optional[float] = ..., saturation: _Optional[float] = ..., hue_hist: _Optional[_Iterable[float]] = ..., dark_share: _Optional[float] = ..., bright_share: _Optional[float] = ..., flat_cell_share: _Optional[float] = ..., fine_flat_share: _Optional[float] = ..., edge_grid: _Optional[bytes] = ..., thumbnail: _Optional[bytes] = ...) -> None: ...
