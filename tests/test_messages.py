"""Record decoding rejects every malformed record with a reason (property-based for bytes)."""

from __future__ import annotations

import contextlib

import pytest
from google.protobuf.timestamp_pb2 import Timestamp
from hypothesis import given, settings
from hypothesis import strategies as st

from services.core.errors import PoisonMessage
from services.core.messages import CONTENT_TYPE, decode, schema_headers
from steadyeye.v1.common_pb2 import FrameRef
from steadyeye.v1.frames_pb2 import Frame

GOOD = Frame(ref=FrameRef(camera_id="cam", frame_id=3))


def test_a_good_record_round_trips():
    assert decode(GOOD.SerializeToString(), schema_headers(GOOD), Frame) == GOOD


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        (GOOD.SerializeToString(), [], "missing 'schema' header"),
        (GOOD.SerializeToString(), [("schema", b"\xff\xfe")], "malformed 'schema' header"),
        (GOOD.SerializeToString(), [("schema", b"steadyeye.v1.Detections")], "unknown schema"),
        (b"", schema_headers(GOOD), "empty payload"),
        (b"\x0a\x05\x0a\x03ca", schema_headers(GOOD), "cannot parse"),
        (
            Frame(ref=FrameRef(frame_id=1)).SerializeToString(),
            schema_headers(GOOD),
            "without ref.camera_id",
        ),
        (b"\x0a\x04\x0a\x02\xff\xfe", schema_headers(GOOD), "cannot parse"),  # invalid UTF-8 id
        (
            Frame(ref=FrameRef(camera_id="cam 1")).SerializeToString(),
            schema_headers(GOOD),
            "invalid camera id 'cam 1'",
        ),
        (
            Frame(ref=FrameRef(camera_id="cam", frame_id=2**64 - 1)).SerializeToString(),
            schema_headers(GOOD),
            "has frame_id 18446744073709551615",
        ),
        (
            Frame(
                ref=FrameRef(camera_id="cam", capture_time=Timestamp(seconds=2**62))
            ).SerializeToString(),
            schema_headers(GOOD),
            "invalid capture_time",
        ),
    ],
)
def test_bad_records_are_poison_with_a_reason(value, headers, reason):
    with pytest.raises(PoisonMessage, match=reason):
        decode(value, headers, Frame)


def test_a_record_over_the_size_limit_is_poison():
    value = GOOD.SerializeToString()
    with pytest.raises(PoisonMessage, match=f"record of {len(value)} bytes exceeds"):
        decode(value, schema_headers(GOOD), Frame, max_bytes=len(value) - 1)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=512))
def test_arbitrary_bytes_either_decode_or_are_poison(value):
    with contextlib.suppress(PoisonMessage):
        decode(value, [("content-type", CONTENT_TYPE), ("schema", b"steadyeye.v1.Frame")], Frame)
