"""Kafka record <-> protobuf message, with the schema named in the headers.

Every record carries `content-type` and `schema` (the full protobuf name, which includes the
version, e.g. steadyeye.v1.Frame). A consumer accepts only the schema it was built for, so a
producer on a newer major version is rejected with a clear reason instead of misparsed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from google.protobuf.message import DecodeError, Message

from services.core.errors import PoisonMessage

CONTENT_TYPE = b"application/x-protobuf"
Headers = list[tuple[str, bytes]]


@dataclass(frozen=True)
class Output:
    """One record a handler wants produced; the loop adds schema and trace headers."""

    topic: str
    key: str
    message: Message
    headers: Headers = field(default_factory=list)


def schema_of(message_type: type[Message]) -> str:
    return message_type.DESCRIPTOR.full_name


def schema_headers(message: Message) -> Headers:
    return [("content-type", CONTENT_TYPE), ("schema", schema_of(type(message)).encode())]


def header(headers: Headers | None, name: str) -> bytes | None:
    for key, value in headers or ():
        if key == name:
            return value
    return None


def decode(value: bytes | None, headers: Headers | None, message_type: type[Message]) -> Message:
    """Parse a record into `message_type`, or raise PoisonMessage saying exactly what is wrong."""
    expected = schema_of(message_type)
    schema = header(headers, "schema")
    if schema is None:
        raise PoisonMessage(f"missing 'schema' header (expected {expected})")
    try:
        schema_text = schema.decode("ascii")
    except UnicodeDecodeError:
        raise PoisonMessage(f"malformed 'schema' header {schema!r}") from None
    if schema_text != expected:
        raise PoisonMessage(f"unknown schema {schema_text!r}: this service reads {expected}")
    if not value:
        raise PoisonMessage("empty payload")
    message = message_type()
    try:
        message.ParseFromString(value)
    except DecodeError as exc:
        raise PoisonMessage(f"cannot parse {expected} ({len(value)} bytes): {exc}") from None
    ref = getattr(message, "ref", None)
    if ref is not None and not ref.camera_id:
        raise PoisonMessage(f"{expected} without ref.camera_id")
    return message
