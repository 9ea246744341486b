from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CameraPace(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_PACE_UNSPECIFIED: _ClassVar[CameraPace]
    CAMERA_PACE_REALTIME: _ClassVar[CameraPace]
    CAMERA_PACE_FAST: _ClassVar[CameraPace]

class CameraPriority(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CAMERA_PRIORITY_UNSPECIFIED: _ClassVar[CameraPriority]
    CAMERA_PRIORITY_HIGH: _ClassVar[CameraPriority]
    CAMERA_PRIORITY_NORMAL: _ClassVar[CameraPriority]
    CAMERA_PRIORITY_LOW: _ClassVar[CameraPriority]
CAMERA_PACE_UNSPECIFIED: CameraPace
CAMERA_PACE_REALTIME: CameraPace
CAMERA_PACE_FAST: CameraPace
CAMERA_PRIORITY_UNSPECIFIED: CameraPriority
CAMERA_PRIORITY_HIGH: CameraPriority
CAMERA_PRIORITY_NORMAL: CameraPriority
CAMERA_PRIORITY_LOW: CameraPriority

class CameraConfig(_message.Message):
    __slots__ = ("id", "source", "pace", "fps", "max_frames", "loop", "priority")
    ID_FIELD_NUMBER: _ClassVar[int]
    SOURCE_FIELD_NUMBER: _ClassVar[int]
    PACE_FIELD_NUMBER: _ClassVar[int]
    FPS_FIELD_NUMBER: _ClassVar[int]
    MAX_FRAMES_FIELD_NUMBER: _ClassVar[int]
    LOOP_FIELD_NUMBER: _ClassVar[int]
    PRIORITY_FIELD_NUMBER: _ClassVar[int]
    id: str
    source: str
    pace: CameraPace
    fps: float
    max_frames: int
    loop: bool
    priority: CameraPriority
    def __init__(self, id: _Optional[str] = ..., source: _Optional[str] = ..., pace: _Optional[_Union[CameraPace, str]] = ..., fps: _Optional[float] = ..., max_frames: _Optional[int] = ..., loop: _Optional[bool] = ..., priority: _Optional[_Union[CameraPriority, str]] = ...) -> None: ...
