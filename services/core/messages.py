"""Kafka record <-> protobuf message, with the schema named in the headers.

Every record carries `content-type` and `schema` (the full protobuf name, which includes the
version, e.g. steadyeye.v1.Frame). A consumer accepts only the schema it was built for, so a
producer on a newer major version is rejected with a clear reason instead of misparsed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from google.protobuf.message import DecodeError, Message
from kafka.consumer.fetcher import ConsumerRecord

from services.core.errors import PoisonMessage

CONTENT_TYPE = b"application/x-protobuf"
Headers = list[tuple[str, bytes]]
# Far above any record the producers send (KafkaSettings.max_request_size, 4 MiB by default;
# big images travel by claim-check), yet small enough that a rogue record is refused before
# protobuf copies it into memory.
MAX_RECORD_BYTES = 64 * 1024 * 1024
# The id rule of the cameras file (services/ingest/cameras.py): a record naming any other camera
# did not come from ingest, and its id would become Kafka keys, Redis keys and metric labels.
CAMERA_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/-]{0,199}")
# google.protobuf.Timestamp's valid range (0001-01-01 to 9999-12-31): outside it, ToDatetime and
# ToNanoseconds raise ValueError downstream.
_SECONDS = range(-62_135_596_800, 253_402_300_800)
_NANOS = range(1_000_000_000)
# Frame ids count from 0 per camera; one past int64 can only be hostile, and would overflow the
# tracker's int64 arrays.
MAX_FRAME_ID = 2**63 - 1


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


def decode(
    value: bytes | None,
    headers: Headers | None,
    message_type: type[Message],
    max_bytes: int = MAX_RECORD_BYTES,
) -> Message:
    """Parse a record into `message_type`, or raise PoisonMessage saying exactly what is wrong.

    Beyond parsing, a message's `ref` must name a valid camera id, a frame id within int64 and a
    valid capture time: downstream code relies on all three."""
    expected = schema_of(message_type)
    schema = header(headers, "schema")
    if schema is None:
        raise PoisonMessage(f"missing 'schema' header (expected {expected})")
    # Quoted at most 100 bytes: the reason goes into logs and a dead-letter header.
    try:
        schema_text = schema.decode("ascii")
    except UnicodeDecodeError:
        raise PoisonMessage(f"malformed 'schema' header {schema[:100]!r}") from None
    if schema_text != expected:
        raise PoisonMessage(f"unknown schema {schema_text[:100]!r}: this service reads {expected}")
    if not value:
        raise PoisonMessage("empty payload")
    if len(value) > max_bytes:
        raise PoisonMessage(f"record of {len(value)} bytes exceeds the {max_bytes}-byte limit")
    message = message_type()
    try:
        message.ParseFromString(value)
    except DecodeError as exc:  # also a string field that is not UTF-8 (upb checks on parse)
        raise PoisonMessage(f"cannot parse {expected} ({len(value)} bytes): {exc}") from None
    ref = getattr(message, "ref", None)
    if ref is not None:
        if not ref.camera_id:
            raise PoisonMessage(f"{expected} without ref.camera_id")
        if not CAMERA_ID.fullmatch(ref.camera_id):
            raise PoisonMessage(
                f"{expected} has invalid camera id {ref.camera_id[:100]!r}: letters, digits and "
                ". _ : / - (starting with a letter or digit), at most 200"
            )
        if ref.frame_id > MAX_FRAME_ID:
            raise PoisonMessage(f"{expected} has frame_id {ref.frame_id}, above 2^63-1")
        stamp = ref.capture_time
        if stamp.seconds not in _SECONDS or stamp.nanos not in _NANOS:
            raise PoisonMessage(
                f"{expected} has an invalid capture_time ({stamp.seconds} s, {stamp.nanos} ns)"
            )
    return message


def deadletter_headers(
    record: ConsumerRecord, reason: str, error_type: str, service: str
) -> list[tuple[str, bytes]]:
    """The record's own headers (an earlier dead letter's replaced) plus why and where from."""
    kept = [(k, v) for k, v in record.headers or () if not k.startswith("x-deadletter-")]
    return [
        *kept,
        ("x-deadletter-reason", reason.encode("utf-8", "replace")[:4096]),
        ("x-deadletter-error-type", error_type.encode()),
        ("x-deadletter-service", service.encode()),
        ("x-deadletter-source", f"{record.topic}/{record.partition}/{record.offset}".encode()),
    ]
