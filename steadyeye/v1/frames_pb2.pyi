from steadyeye.v1 import common_pb2 as _common_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ImageEncoding(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    IMAGE_ENCODING_UNSPECIFIED: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_JPEG: _ClassVar[ImageEncoding]
    IMAGE_ENCODING_BGR24: _ClassVar[ImageEncoding]
IMAGE_ENCODING_UNSPECIFIED: ImageEncoding
IMAGE_ENCODING_JPEG: ImageEncoding
IMAGE_ENCODING_BGR24: ImageEncoding

class Frame(_message.Message):
    __slots__ = ("ref", "encoding", "image", "source_uri")
    REF_FIELD_NUMBER: _ClassVar[int]
    ENCODING_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SOURCE_URI_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.FrameRef
    encoding: ImageEncoding
    image: _common_pb2.Payload
    source_uri: str
    def __init__(self, ref: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., encoding: _Optional[_Union[ImageEncoding, str]] = ..., image: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., source_uri: _Optional[str] = ...) -> None: ...

class ReadyFrame(_message.Message):
    __slots__ = ("ref", "model_name", "tensor", "input_width", "input_height", "scale", "pad_x", "pad_y", "quality")
    REF_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    TENSOR_FIELD_NUMBER: _ClassVar[int]
    INPUT_WIDTH_FIELD_NUMBER: _ClassVar[int]
    INPUT_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    PAD_X_FIELD_NUMBER: _ClassVar[int]
    PAD_Y_FIELD_NUMBER: _ClassVar[int]
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    ref: _common_pb2.FrameRef
    model_name: str
    tensor: _common_pb2.Payload
    input_width: int
    input_height: int
    scale: float
    pad_x: float
    pad_y: float
    quality: _common_pb2.FrameQuality
    def __init__(self, ref: _Optional[_Union[_common_pb2.FrameRef, _Mapping]] = ..., model_name: _Optional[str] = ..., tensor: _Optional[_Union[_common_pb2.Payload, _Mapping]] = ..., input_width: _Optional[int] = ..., input_height: _Optional[int] = ..., scale: _Optional[float] = ..., pad_x: _Optional[float] = ..., pad_y: _Optional[float] = ..., quality: _Optional[_Union[_common_pb2.FrameQuality, _Mapping]] = ...) -> None: ...
