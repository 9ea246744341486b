"""Hostile input: every decoder in the services either returns a valid value or rejects the input
with a reason, and nothing else ever escapes.

For Kafka records, images, payloads, tensors, detections and tracks the rejection is
PoisonMessage (dead-lettered with its reason); for the cameras file ConfigError, for the rule
file RuleFileError. The tables below are the specification, one row per kind of bad input; the
hypothesis properties then fuzz around them (random, truncated, bit-flipped and mutated input).
No broker, Redis or Triton is needed: each decoder is called directly.
"""

from __future__ import annotations

import resource
import struct
import subprocess
import sys
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import cv2
import numpy as np
import pytest
import redis
import yaml
from google.protobuf.message import DecodeError, Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.alert.handler import to_drift, to_observation
from services.alert.rules import AlertEngine, RuleFileError, load_rules, parse_rules
from services.alert.rules.models import RULE_TYPES
from services.contract import ModelContract
from services.core.claimcheck import PayloadStore, RedisStore
from services.core.errors import ConfigError, PoisonMessage, TransientError
from services.core.messages import (
    CAMERA_ID,
    CONTENT_TYPE,
    MAX_RECORD_BYTES,
    decode,
    schema_headers,
)
from services.core.payload_keys import READY
from services.core.settings import ClaimCheckSettings
from services.inference.handler import InferenceHandler
from services.inference.tiers import Tier
from services.ingest.cameras import load_cameras
from services.preprocess.decode import declared_size, decode_image
from services.tracking.handler import TrackingHandler
from services.tracking.tracker import TrackerConfig
from steadyeye.v1.common_pb2 import BoundingBox, ClaimCheck, FrameQuality, FrameRef, Payload
from steadyeye.v1.detections_pb2 import Detection, Detections, ModelRef
from steadyeye.v1.drift_pb2 import DriftEvent, SignalDrift
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding, ReadyFrame
from steadyeye.v1.tracks_pb2 import Track, Tracks, TrackState
from tests.scenes import NoState

ROOT = Path(__file__).resolve().parent.parent
RULES = ROOT / "tests" / "data" / "rules.yaml"
FUZZ = settings(max_examples=200, deadline=None)
FUZZ_FEW = settings(max_examples=60, deadline=None)  # the slower decoders (image, tracker)
MAX_PIXELS = 10_000_000  # below OpenCV's own default limit, so decode_image's check is tested
JPEG = ImageEncoding.IMAGE_ENCODING_JPEG
BGR24 = ImageEncoding.IMAGE_ENCODING_BGR24


def rejected_with_reason(call: Callable[[], Any], error: type[Exception] = PoisonMessage) -> Any:
    """call() returns a value, or raises `error` with a non-empty reason (then None).

    Any other exception propagates, failing the test: that is the property under test."""
    try:
        return call()
    except error as exc:
        assert str(exc).strip(), f"{type(exc).__name__} without a reason"
        return None


def poison_reason(call: Callable[[], Any]) -> str:
    with pytest.raises(PoisonMessage) as caught:
        call()
    reason = str(caught.value)
    assert reason.strip()
    return reason


# --- Kafka records: services.core.messages.decode --------------------------------------------

REF = FrameRef(camera_id="cam-1", frame_id=7, width=64, height=48)
REF.capture_time.FromSeconds(1_700_000_000)
GOOD: dict[type[Message], Message] = {
    Frame: Frame(ref=REF, encoding=JPEG, image=Payload(inline=b"\xff\xd8 not really")),
    ReadyFrame: ReadyFrame(
        ref=REF,
        model_name="yolox_nano",
        tensor=Payload(claim_check=ClaimCheck(key="k", size_bytes=12)),
        input_width=416,
        input_height=416,
        scale=0.5,
    ),
    Detections: Detections(
        ref=REF,
        model=ModelRef(name="yolox_nano", version="1"),
        detections=[Detection(box=BoundingBox(x1=1, y1=2, x2=30, y2=40), score=0.9)],
        quality=FrameQuality(brightness=100),
    ),
    Tracks: Tracks(
        ref=REF,
        tracks=[Track(track_id=1, state=TrackState.TRACK_STATE_STARTED, detection=Detection())],
    ),
}
TYPES = list(GOOD)


def record(message: Message) -> tuple[bytes, list[tuple[str, bytes]]]:
    return message.SerializeToString(), schema_headers(message)


def with_ref(message: Message, **fields: Any) -> Message:
    changed = type(message)()
    changed.CopyFrom(message)
    for name, value in fields.items():
        if name == "capture_time":
            changed.ref.capture_time.seconds, changed.ref.capture_time.nanos = value
        else:
            setattr(changed.ref, name, value)
    return changed


def with_camera_bytes(message: Message, raw: bytes) -> bytes:
    """`message` serialized with the bytes of ref.camera_id replaced by `raw`, which need not be
    UTF-8: what a foreign producer could send, and protobuf itself would refuse to build."""
    placeholder = b"\x7f" * len(raw)  # DEL: found nowhere else in these messages
    value = with_ref(message, camera_id=placeholder.decode()).SerializeToString()
    assert value.count(placeholder) == 1
    return value.replace(placeholder, raw)


FRAME_BYTES, FRAME_HEADERS = record(GOOD[Frame])


@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
def test_every_good_record_decodes(message_type):
    value, headers = record(GOOD[message_type])
    assert decode(value, headers, message_type) == GOOD[message_type]


@pytest.mark.parametrize(
    ("value", "headers", "reason"),
    [
        pytest.param(FRAME_BYTES, [], "missing 'schema' header", id="no headers"),
        pytest.param(FRAME_BYTES, None, "missing 'schema' header", id="headers None"),
        pytest.param(
            FRAME_BYTES, [("content-type", CONTENT_TYPE)], "missing 'schema'", id="no schema"
        ),
        pytest.param(FRAME_BYTES, [("schema", None)], "missing 'schema'", id="schema null"),
        pytest.param(FRAME_BYTES, [("schema", b"")], "unknown schema ''", id="schema empty"),
        pytest.param(
            FRAME_BYTES,
            [("schema", b"steadyeye.v1.Fr\xc3\xa4me")],
            "malformed 'schema' header",
            id="schema not ASCII",
        ),
        pytest.param(
            FRAME_BYTES, [("schema", b"\xff\xfe\x00")], "malformed 'schema'", id="schema binary"
        ),
        pytest.param(
            FRAME_BYTES,
            [("schema", b"steadyeye.v2.Frame")],
            "unknown schema 'steadyeye.v2.Frame': this service reads steadyeye.v1.Frame",
            id="newer major version",
        ),
        pytest.param(
            FRAME_BYTES,
            [("schema", b"steadyeye.v1.Detections")],
            "unknown schema 'steadyeye.v1.Detections'",
            id="another message type",
        ),
        pytest.param(
            FRAME_BYTES, [("schema", b"x" * 100_000)], "unknown schema", id="schema 100 kB"
        ),
        pytest.param(b"", FRAME_HEADERS, "empty payload", id="empty payload"),
        pytest.param(None, FRAME_HEADERS, "empty payload", id="null payload (tombstone)"),
        pytest.param(
            FRAME_BYTES[: len(FRAME_BYTES) // 2], FRAME_HEADERS, "cannot parse", id="truncated"
        ),
        pytest.param(FRAME_BYTES[:-1], FRAME_HEADERS, "cannot parse", id="last byte missing"),
        pytest.param(b"\xff" * 64, FRAME_HEADERS, "cannot parse", id="garbage"),
        pytest.param(b"\x0a\xff\xff\xff\xff\x0f", FRAME_HEADERS, "cannot parse", id="length 4G"),
        pytest.param(
            with_camera_bytes(GOOD[Frame], b"cam\xff"),
            FRAME_HEADERS,
            "cannot parse",
            id="camera id invalid UTF-8",
        ),
        pytest.param(
            with_camera_bytes(GOOD[Frame], b"\xed\xa0\x80"),
            FRAME_HEADERS,
            "cannot parse",
            id="camera id UTF-16 surrogate",
        ),
        pytest.param(
            with_camera_bytes(GOOD[Frame], b"\xc0\xaf"),
            FRAME_HEADERS,
            "cannot parse",
            id="camera id overlong UTF-8",
        ),
        pytest.param(
            with_ref(GOOD[Frame], camera_id="").SerializeToString(),
            FRAME_HEADERS,
            "without ref.camera_id",
            id="camera id empty",
        ),
        pytest.param(
            Frame(encoding=JPEG).SerializeToString(),
            FRAME_HEADERS,
            "without ref.camera_id",
            id="no ref at all",
        ),
    ],
)
def test_bad_records_are_poison_with_a_reason(value, headers, reason):
    assert reason in poison_reason(lambda: decode(value, headers, Frame))


@pytest.mark.parametrize(
    "camera_id",
    [
        pytest.param("cam 1", id="space"),
        pytest.param("cam\n1", id="newline"),
        pytest.param("cam\x00", id="NUL"),
        pytest.param("cam-1\n", id="trailing newline"),
        pytest.param("-cam", id="leading dash"),
        pytest.param("caméra", id="non-ASCII letter"),
        pytest.param("cam}{", id="braces"),
        pytest.param("a" * 201, id="201 characters"),
        pytest.param("\u202ecam", id="bidi override"),
    ],
)
@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
def test_camera_ids_the_cameras_file_would_refuse_are_poison(message_type, camera_id):
    value, headers = record(with_ref(GOOD[message_type], camera_id=camera_id))
    assert "invalid camera id" in poison_reason(lambda: decode(value, headers, message_type))


@pytest.mark.parametrize(
    ("seconds", "nanos"),
    [
        pytest.param(2**63 - 1, 0, id="seconds int64 max"),
        pytest.param(-(2**63), 0, id="seconds int64 min"),
        pytest.param(253_402_300_800, 0, id="year 10000"),
        pytest.param(0, -1, id="negative nanos"),
        pytest.param(0, 1_000_000_000, id="nanos a full second"),
    ],
)
def test_capture_times_outside_the_timestamp_range_are_poison(seconds, nanos):
    value, headers = record(with_ref(GOOD[Tracks], capture_time=(seconds, nanos)))
    assert "invalid capture_time" in poison_reason(lambda: decode(value, headers, Tracks))


@pytest.mark.parametrize("frame_id", [2**63, 2**64 - 1], ids=["2^63", "uint64 max"])
@pytest.mark.parametrize("message_type", TYPES, ids=lambda t: t.__name__)
def test_frame_ids_beyond_int64_are_poison(message_type, frame_id):
    value, headers = record(with_ref(GOOD[message_type], frame_id=frame_id))
    assert "above 2^63-1" in poison_reason(lambda: decode(value, headers, message_type))


@pytest.mark.parametrize(
    "fields",
    [
        pytest.param({"frame_id": 2**63 - 1}, id="frame id int64 max"),
        pytest.param({"width": 2**32 - 1, "height": 2**32 - 1}, id="size uint32 max"),
        pytest.param({"camera_id": "a" * 200}, id="camera id 200 characters"),
        pytest.param({"camera_id": "site-2/gate:3.cam_b"}, id="camera id every allowed sign"),
        pytest.param({"capture_time": (253_402_300_799, 999_999_999)}, id="last valid time"),
        pytest.param({"capture_time": (-62_135_596_800, 0)}, id="first valid time"),
    ],
)
def test_extreme_but_valid_refs_decode(fields):
    message = with_ref(GOOD[Frame], **fields)
    assert decode(*record(message), Frame) == message


def test_a_record_over_the_size_limit_is_poison_before_parsing():
    value, headers = record(GOOD[Frame])
    reason = poison_reason(lambda: decode(value, headers, Frame, max_bytes=len(value) - 1))
    assert f"record of {len(value)} bytes exceeds the {len(value) - 1}-byte limit" in reason
    huge = b"\x00" * (MAX_RECORD_BYTES + 1)  # the default limit, whatever the payload
    assert "exceeds" in poison_reason(lambda: decode(huge, headers, Frame))


@FUZZ
@given(st.sampled_from(TYPES), st.binary(max_size=512))
def test_arbitrary_bytes_decode_or_are_poison(message_type, value):
    rejected_with_reason(lambda: decode(value, schema_headers(message_type()), message_type))


@st.composite
def mutated(draw: st.DrawFn, value: bytes) -> bytes:
    """`value` truncated, with bits flipped, bytes inserted or a slice deleted."""
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, max(len(data) - 1, 0)))
        kind = draw(st.sampled_from(["truncate", "flip", "insert", "delete"]))
        if kind == "truncate":
            del data[at:]
        elif kind == "flip" and data:
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        else:
            del data[at : at + draw(st.integers(1, 16))]
    return bytes(data)


@FUZZ
@given(st.data())
def test_mutated_good_records_decode_or_are_poison(data):
    message_type = data.draw(st.sampled_from(TYPES))
    value, headers = record(GOOD[message_type])
    rejected_with_reason(lambda: decode(data.draw(mutated(value)), headers, message_type))


@FUZZ
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["schema", "content-type", "traceparent"]) | st.text(max_size=12),
            st.none() | st.binary(max_size=40) | st.just(b"steadyeye.v1.Frame"),
        ),
        max_size=4,
    )
)
def test_arbitrary_headers_decode_or_are_poison(headers):
    decoded = rejected_with_reason(lambda: decode(FRAME_BYTES, headers, Frame))
    schema = next((value for key, value in headers if key == "schema"), None)  # the first wins
    assert (decoded is not None) == (schema == b"steadyeye.v1.Frame")


@FUZZ
@given(st.sampled_from(TYPES), st.binary(min_size=1, max_size=60))
def test_camera_id_bytes_decode_only_when_valid_text_and_a_valid_id(message_type, raw):
    value = with_camera_bytes(GOOD[message_type], raw)
    decoded = rejected_with_reason(
        lambda: decode(value, schema_headers(GOOD[message_type]), message_type)
    )
    try:
        valid = CAMERA_ID.fullmatch(raw.decode("utf-8")) is not None
    except UnicodeDecodeError:
        valid = False
    assert (decoded is not None) == valid
    if valid:
        assert decoded.ref.camera_id == raw.decode()


# Each value is mostly plausible (so the decoders get past their first check and the tracker
# and rules really run), sometimes extreme: NaN, infinities, the type's limits.
coordinate = st.floats(-50, 700, width=32) | st.floats(width=32)
score = st.floats(0, 1, width=32) | st.floats(width=32)
uint32 = st.integers(0, 4000) | st.integers(0, 2**32 - 1)
uint64 = st.integers(0, 1000) | st.integers(0, 2**64 - 1)


@st.composite
def refs(draw: st.DrawFn) -> FrameRef:
    ref = FrameRef(
        camera_id=draw(st.from_regex(CAMERA_ID, fullmatch=True) | st.text(max_size=8)),
        frame_id=draw(uint64),
        width=draw(uint32),
        height=draw(uint32),
    )
    ref.capture_time.seconds = draw(st.integers(0, 4000) | st.integers(-(2**63), 2**63 - 1))
    ref.capture_time.nanos = draw(st.integers(0, 999_999_999) | st.integers(-(2**31), 2**31 - 1))
    return ref


@st.composite
def detections(draw: st.DrawFn) -> Detection:
    return Detection(
        box=BoundingBox(
            x1=draw(coordinate), y1=draw(coordinate), x2=draw(coordinate), y2=draw(coordinate)
        ),
        score=draw(score),
        class_id=draw(uint32),
        class_name=draw(st.sampled_from(["person", "truck", "car", ""]) | st.text(max_size=6)),
    )


@FUZZ
@given(refs(), st.sampled_from(TYPES))
def test_any_ref_a_producer_can_build_decodes_or_is_poison(ref, message_type):
    message = type(GOOD[message_type])()
    message.CopyFrom(GOOD[message_type])
    message.ref.CopyFrom(ref)
    decoded = rejected_with_reason(lambda: decode(*record(message), message_type))
    if decoded is not None:
        assert decoded.SerializeToString() == message.SerializeToString()
        assert CAMERA_ID.fullmatch(decoded.ref.camera_id)
        decoded.ref.capture_time.ToNanoseconds()  # valid: what downstream code calls


# --- Images: services.preprocess.decode.decode_image -----------------------------------------

IMAGE = np.random.default_rng(1).integers(0, 256, (48, 64, 3), np.uint8)
IMAGE[8:40, 8:56] = (0, 128, 255)  # some structure, so the JPEG has real entropy-coded data
JPEG_BYTES = cv2.imencode(".jpg", IMAGE, [cv2.IMWRITE_JPEG_QUALITY, 90])[1].tobytes()
PNG_BYTES = cv2.imencode(".png", IMAGE)[1].tobytes()


def frame(encoding: int = JPEG, width: int = 0, height: int = 0) -> Frame:
    return Frame(ref=FrameRef(camera_id="cam", width=width, height=height), encoding=encoding)


def png_declaring(width: int, height: int) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b"\x00" * 4096))
        + chunk(b"IEND", b"")
    )


def jpeg_declaring(width: int, height: int) -> bytes:
    at = JPEG_BYTES.index(b"\xff\xc0")  # baseline start-of-frame: length, precision, height, width
    return JPEG_BYTES[: at + 5] + struct.pack(">HH", height, width) + JPEG_BYTES[at + 9 :]


def bmp_declaring(width: int, height: int) -> bytes:
    header = struct.pack("<2sIHHI", b"BM", 54 + 64, 0, 0, 54)
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 64, 0, 0, 0, 0)
    return header + info + b"\x00" * 64


def webp_declaring(width: int, height: int) -> bytes:
    vp8x = b"VP8X" + struct.pack("<I", 10) + b"\x00" * 4
    vp8x += (width - 1).to_bytes(3, "little") + (height - 1).to_bytes(3, "little")
    return b"RIFF" + struct.pack("<I", 4 + len(vp8x)) + b"WEBP" + vp8x


@pytest.mark.parametrize(
    ("encode", "ext"),
    [
        (jpeg_declaring, ".jpg"),
        (png_declaring, ".png"),
        (bmp_declaring, ".bmp"),
        (webp_declaring, ".webp"),
    ],
    ids=["jpeg", "png", "bmp", "webp"],
)
def test_declared_size_reads_the_header_of_real_and_crafted_images(encode, ext):
    assert declared_size(cv2.imencode(ext, IMAGE)[1].tobytes()) == (64, 48)
    assert declared_size(encode(50_000, 40_000)) == (50_000, 40_000)


def test_a_good_jpeg_png_and_raw_frame_decode():
    for data in (JPEG_BYTES, PNG_BYTES):
        assert decode_image(frame(), data, MAX_PIXELS).shape == (48, 64, 3)
    raw = decode_image(frame(BGR24, 64, 48), IMAGE.tobytes(), MAX_PIXELS)
    assert np.array_equal(raw, IMAGE)


@pytest.mark.parametrize(
    ("message", "data", "reason"),
    [
        pytest.param(frame(), b"", "empty image payload", id="empty JPEG payload"),
        pytest.param(frame(BGR24, 64, 48), b"", "empty image payload", id="empty raw payload"),
        pytest.param(frame(), b"hello", "not a JPEG, PNG, BMP or WebP", id="not an image"),
        pytest.param(frame(), JPEG_BYTES[:16], "corrupt or truncated header", id="JPEG cut short"),
        pytest.param(frame(), b"\xff\xd8" + bytes(range(256)) * 8, "cannot decode", id="junk"),
        pytest.param(frame(), PNG_BYTES[:40], "): corrupt or truncated", id="PNG cut in IDAT"),
        pytest.param(
            frame(), jpeg_declaring(60_000, 60_000), "declares 60000x60000", id="JPEG bomb"
        ),
        pytest.param(
            frame(),
            jpeg_declaring(20_000, 20_000),
            "declares 20000x20000",
            id="JPEG bomb under OpenCV's own limit",
        ),
        pytest.param(frame(), png_declaring(50_000, 50_000), "declares 50000x50000", id="PNG"),
        pytest.param(
            frame(), png_declaring(2**31 - 1, 2**31 - 1), "more than 10000000", id="PNG 2G x 2G"
        ),
        pytest.param(frame(), bmp_declaring(50_000, -50_000), "declares 50000x50000", id="BMP"),
        pytest.param(frame(), webp_declaring(2**24, 2**24), "declares 16777216x", id="WebP"),
        pytest.param(
            frame(BGR24, 64, 48), IMAGE.tobytes()[:-1], "64x48x3 needs 9216", id="raw short"
        ),
        pytest.param(
            frame(BGR24, 64, 48), IMAGE.tobytes() + b"\0", "64x48x3 needs 9216", id="raw long"
        ),
        pytest.param(
            frame(BGR24, 48, 64), IMAGE.tobytes()[:100], "has 100 bytes", id="raw swapped size"
        ),
        pytest.param(frame(BGR24, 0, 48), b"\0" * 9, "0x48x3 needs 0", id="raw zero width"),
        pytest.param(frame(BGR24, 64, 0), b"\0" * 9, "64x0x3 needs 0", id="raw zero height"),
        pytest.param(frame(BGR24), b"\0" * 9, "0x0x3", id="raw without size"),
        pytest.param(
            frame(BGR24, 2**32 - 1, 2**32 - 1),
            b"\0" * 9,
            "exceeds 10000000 pixels",
            id="raw uint32 max size",
        ),
        pytest.param(
            frame(BGR24, 1, 2**32 - 1), b"\0" * 9, "exceeds", id="raw width*height over limit"
        ),
        pytest.param(
            frame(ImageEncoding.IMAGE_ENCODING_UNSPECIFIED),
            JPEG_BYTES,
            "unsupported image encoding IMAGE_ENCODING_UNSPECIFIED",
            id="encoding unset",
        ),
        pytest.param(frame(7), JPEG_BYTES, "unsupported image encoding 7", id="encoding 7"),
        pytest.param(
            frame(),
            b"P6\n30000 30000\n255\n" + b"\0" * 64,
            "not a JPEG, PNG, BMP or WebP",
            id="PPM bomb (a format OpenCV reads, ingest never sends)",
        ),
        pytest.param(
            frame(),
            cv2.imencode(".tiff", IMAGE)[1].tobytes(),
            "not a JPEG, PNG, BMP or WebP",
            id="TIFF",
        ),
        pytest.param(
            frame(),
            b"\xff\xd8" + b"junk" * 10 + jpeg_declaring(60_000, 60_000)[2:],
            "declares 60000x60000",
            id="JPEG bomb behind junk bytes (libjpeg skips them)",
        ),
    ],
)
def test_bad_images_are_poison_with_a_reason(message, data, reason):
    assert reason in poison_reason(lambda: decode_image(message, data, MAX_PIXELS))


def test_a_decompression_bomb_is_refused_quickly_without_allocating():
    bombs = [
        jpeg_declaring(20_000, 20_000),
        png_declaring(30_000, 30_000),
        bmp_declaring(30_000, 30_000),
        webp_declaring(16_000, 16_000),
    ]
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    for bomb in bombs:  # each would be 1.2 to 2.7 GB decoded
        poison_reason(lambda bomb=bomb: decode_image(frame(), bomb, MAX_PIXELS))
    assert time.perf_counter() - started < 1.0
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_kib) / 1024
    assert grown_mib < 100


def test_an_image_just_over_the_limit_is_refused_from_its_header():
    for data in (JPEG_BYTES, PNG_BYTES):
        reason = poison_reason(lambda data=data: decode_image(frame(), data, 64 * 48 - 1))
        assert "declares 64x48, more than 3071 pixels" in reason
        assert decode_image(frame(), data, 64 * 48).shape == (48, 64, 3)


def decoded_or_poison(message: Frame, data: bytes) -> np.ndarray | None:
    image = rejected_with_reason(lambda: decode_image(message, data, MAX_PIXELS))
    if image is not None:
        assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
        assert 0 < image.shape[0] * image.shape[1] <= MAX_PIXELS
    return image


@pytest.mark.parametrize("data", [JPEG_BYTES, PNG_BYTES], ids=["jpeg", "png"])
def test_every_truncation_of_a_real_image_decodes_or_is_poison(data):
    for end in range(0, len(data), max(1, len(data) // 150)):
        image = decoded_or_poison(frame(), data[:end])
        if image is not None:  # libjpeg fills a truncated scan with grey, at the declared size
            assert image.shape == (48, 64, 3)


@FUZZ_FEW
@given(st.data())
def test_mutated_real_images_decode_or_are_poison(data):
    original = data.draw(st.sampled_from([JPEG_BYTES, PNG_BYTES]))
    decoded_or_poison(frame(), data.draw(mutated(original)))


@FUZZ_FEW
@given(
    st.sampled_from([b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM", b"RIFF\0\0\0\0WEBP", b""]),
    st.binary(max_size=300),
)
def test_arbitrary_bytes_behind_an_image_signature_decode_or_are_poison(signature, rest):
    decoded_or_poison(frame(), signature + rest)


@FUZZ
@given(st.integers(0, 2**32 - 1), st.integers(0, 2**32 - 1), st.integers(0, 20_000))
def test_raw_frames_of_any_declared_size_decode_only_when_the_bytes_match(width, height, size):
    image = decoded_or_poison(frame(BGR24, width, height), b"\x01" * size)
    assert (image is not None) == (size == width * height * 3 > 0)


@FUZZ
@given(st.integers(-(2**31), 2**31 - 1), st.binary(min_size=1, max_size=64))
def test_any_encoding_value_decodes_or_is_poison(encoding, data):
    message = Frame()
    message.encoding = encoding  # proto3 enums are open: a newer producer may send any number
    decoded_or_poison(message, data)


# --- Payloads: services.core.claimcheck.PayloadStore.get -------------------------------------

K = READY.key(REF.camera_id, REF.frame_id)  # a key the record REF may name
SCOPE = READY.of(REF)


class FakeRedis:
    def __init__(self, values: dict[str, bytes] | None = None, down: bool = False) -> None:
        self.values = values or {}
        self.down = down

    def mget(self, keys: list[str]) -> list[bytes | None]:
        if self.down:
            raise redis.ConnectionError("connection refused")
        return [self.values.get(key) for key in keys]


def store(values: dict[str, bytes] | None = None) -> PayloadStore:
    return RedisStore(FakeRedis(values), ClaimCheckSettings())  # type: ignore[arg-type]


def test_payloads_that_resolve():
    assert store().get(Payload(inline=b"abc"), SCOPE) == b"abc"
    # then the decoder says "empty image payload"
    assert store().get(Payload(inline=b""), SCOPE) == b""
    claim = Payload(claim_check=ClaimCheck(key=K, size_bytes=4))
    assert store({K: b"abcd"}).get(claim, SCOPE) == b"abcd"


@pytest.mark.parametrize(
    ("payload", "values", "reason"),
    [
        pytest.param(Payload(), {}, "neither inline bytes nor a claim check", id="empty"),
        pytest.param(
            Payload(claim_check=ClaimCheck(key=K, size_bytes=4)),
            {},
            "is missing",
            id="expired claim check",
        ),
        pytest.param(
            Payload(claim_check=ClaimCheck(size_bytes=4)),
            {},
            "'' is not one of the ready payloads of camera 'cam-1' frame 7",
            id="empty key",
        ),
        pytest.param(
            Payload(claim_check=ClaimCheck(key=K, size_bytes=5)),
            {K: b"abcd"},
            "has 4 bytes, expected 5",
            id="size mismatch",
        ),
        pytest.param(
            Payload(claim_check=ClaimCheck(key=K, size_bytes=2**64 - 1)),
            {K: b"abcd"},
            "expected 18446744073709551615",
            id="absurd size",
        ),
    ],
)
def test_bad_payloads_are_poison_with_a_reason(payload, values, reason):
    assert reason in poison_reason(lambda: store(values).get(payload, SCOPE))


def test_redis_down_is_transient_not_poison():
    payloads = RedisStore(FakeRedis(down=True), ClaimCheckSettings())  # type: ignore[arg-type]
    with pytest.raises(TransientError, match=f"redis unavailable reading {K}"):
        payloads.get(Payload(claim_check=ClaimCheck(key=K, size_bytes=1)), SCOPE)


@FUZZ
@given(st.binary(max_size=200))
def test_any_serialized_payload_resolves_or_is_poison(value):
    payload = rejected_with_reason(lambda: Payload.FromString(value), DecodeError)
    if payload is not None:
        rejected_with_reason(lambda: store({K: b"abcd"}).get(payload, SCOPE))


# --- Tensors: InferenceHandler._inputs (ReadyFrames -> the model's uint8 inputs) -------------

CONTRACT = ModelContract(
    name="yolox_nano",
    input_name="images",
    input_width=32,
    input_height=24,
    pad_side="center",
    pad_value=114,
    class_names=("person", "car"),
    max_batch_size=8,
)
TENSOR_BYTES = 24 * 32 * 3


@pytest.fixture(scope="module")
def inference():
    handler = InferenceHandler(
        # Triton: never called
        [Tier("", CONTRACT.name, SimpleNamespace(close=lambda: None), 1.0, 1.0)],  # type: ignore[arg-type]
        CONTRACT,
        store({K: b"\x07" * TENSOR_BYTES}),
        "detections",
        SimpleNamespace(max_in_flight=1, max_batch=1, shared_memory=False),  # type: ignore[arg-type]
    )
    yield handler
    handler.close()


def ready(tensor: bytes, width: int = 32, height: int = 24) -> ReadyFrame:
    return ReadyFrame(
        ref=REF, tensor=Payload(inline=tensor), input_width=width, input_height=height, scale=1
    )


def model_input(handler: InferenceHandler, frame: ReadyFrame):
    [result] = handler._inputs([frame])
    if isinstance(result, Exception):
        raise result
    return result


def test_a_tensor_of_the_right_size_becomes_the_model_input(inference):
    assert model_input(inference, ready(b"\x01" * TENSOR_BYTES)).shape == (24, 32, 3)
    claim = ReadyFrame(
        ref=REF,
        input_width=32,
        input_height=24,
        scale=1,
        tensor=Payload(claim_check=ClaimCheck(key=K, size_bytes=TENSOR_BYTES)),
    )
    assert model_input(inference, claim).shape == (24, 32, 3)


def test_one_bad_frame_in_a_poll_leaves_the_others_their_inputs(inference):
    frames = [ready(b"\x01" * TENSOR_BYTES), ready(b"\0"), ready(b"\x02" * TENSOR_BYTES)]
    good, bad, also_good = inference._inputs(frames)
    assert good.shape == also_good.shape == (24, 32, 3)
    assert "tensor has 1 bytes" in str(bad)


@pytest.mark.parametrize(
    ("message", "reason"),
    [
        pytest.param(
            ready(b""), f"tensor has 0 bytes, yolox_nano needs {TENSOR_BYTES}", id="empty"
        ),
        pytest.param(ready(b"\0" * (TENSOR_BYTES - 1)), "needs 2304 (32x24x3 uint8)", id="short"),
        pytest.param(ready(b"\0" * (TENSOR_BYTES + 1)), "tensor has 2305 bytes", id="long"),
        pytest.param(ready(b"\0" * TENSOR_BYTES, 24, 32), "letterboxed to 24x32", id="rotated"),
        pytest.param(ready(b"\0" * TENSOR_BYTES, 0, 0), "letterboxed to 0x0", id="no size"),
        pytest.param(
            ready(b"\0" * TENSOR_BYTES, 2**32 - 1, 2**32 - 1), "takes 32x24", id="uint32 max"
        ),
        pytest.param(
            ReadyFrame(input_width=32, input_height=24, scale=1),
            "payload is empty",
            id="no payload",
        ),
        pytest.param(
            ReadyFrame(input_width=32, input_height=24, scale=0),
            "cannot map boxes back",
            id="zero scale",
        ),
        pytest.param(
            ReadyFrame(input_width=32, input_height=24, scale=1, pad_x=float("nan")),
            "cannot map boxes back",
            id="NaN padding",
        ),
    ],
)
def test_bad_tensors_are_poison_with_a_reason(inference, message, reason):
    assert reason in poison_reason(lambda: model_input(inference, message))


@FUZZ
@given(st.integers(0, 2 * TENSOR_BYTES), st.sampled_from([(32, 24), (24, 32), (0, 0), (33, 24)]))
def test_tensors_of_any_size_are_accepted_only_at_the_model_input_size(inference, size, shape):
    tensor = rejected_with_reason(lambda: model_input(inference, ready(b"\x02" * size, *shape)))
    assert (tensor is not None) == (size == TENSOR_BYTES and shape == (32, 24))


# --- Detections -> tracker: TrackingHandler.handle -------------------------------------------


def tracker() -> TrackingHandler:
    return TrackingHandler(NoState(), "tracks", TrackerConfig())  # type: ignore[arg-type]


def track(handler: TrackingHandler, message: Detections) -> None:
    """As the service does: decode the record (PoisonMessage), then handle it."""
    decoded = rejected_with_reason(lambda: decode(*record(message), Detections))
    if decoded is not None:
        for out in rejected_with_reason(lambda: handler.handle(decoded)) or []:
            assert all(t.track_id > 0 for t in out.message.tracks)


def test_hostile_detections_are_tracked_or_ignored_never_a_crash():
    handler = tracker()
    nan, inf = float("nan"), float("inf")
    hostile = [
        Detection(box=BoundingBox(x1=nan, y1=0, x2=10, y2=10), score=0.9),
        Detection(box=BoundingBox(x1=-inf, y1=-inf, x2=inf, y2=inf), score=inf),
        Detection(box=BoundingBox(x1=50, y1=50, x2=10, y2=10), score=0.9),  # x2 < x1
        Detection(box=BoundingBox(x1=0, y1=0, x2=3e38, y2=3e38), score=nan, class_id=2**32 - 1),
        Detection(box=BoundingBox(x1=10, y1=10, x2=40, y2=60), score=0.95, class_name="person"),
    ]
    for frame_id in [0, 1, 2, 2**62, 2**63 - 1, 2**63, 2**64 - 1, 5]:
        ref = FrameRef(camera_id="cam", frame_id=frame_id)
        track(handler, Detections(ref=ref, detections=hostile))
    handler.before_commit()


def test_the_tracker_itself_refuses_frame_ids_beyond_int64():
    handler = tracker()
    box = Detection(box=BoundingBox(x1=10, y1=10, x2=40, y2=60), score=0.95)
    for frame_id in (2**63 - 2, 2**63 - 1, 2**63):  # matched again: last_seen is written
        ref = FrameRef(camera_id="cam", frame_id=frame_id)
        rejected_with_reason(lambda ref=ref: handler.handle(Detections(ref=ref, detections=[box])))


@FUZZ_FEW
@given(st.lists(st.tuples(uint64, st.lists(detections(), max_size=6)), min_size=1, max_size=4))
def test_any_detections_sequence_is_tracked_or_poison(frames):
    handler = tracker()
    for frame_id, found in frames:
        track(
            handler, Detections(ref=FrameRef(camera_id="cam", frame_id=frame_id), detections=found)
        )
    handler.before_commit()


# --- Tracks -> alert engine: services.alert.handler.to_observation ----------------------------


@pytest.fixture(scope="module")
def ruleset():
    return load_rules(RULES)


@st.composite
def tracks_messages(draw: st.DrawFn) -> Tracks:
    ref = draw(refs())
    ref.camera_id = "rules-a"  # a camera with rules, so the engine evaluates every rule type
    message = Tracks(
        ref=ref,
        tracks=[
            Track(track_id=draw(uint64), state=draw(st.integers(0, 5)), detection=d)
            for d in draw(st.lists(detections(), max_size=5))
        ],
    )
    if draw(st.booleans()):
        quality = FrameQuality(brightness=draw(coordinate), sharpness=draw(coordinate))
        message.quality.CopyFrom(quality)
    return message


@FUZZ_FEW
@given(st.lists(tracks_messages(), min_size=1, max_size=4))
def test_any_tracks_record_becomes_an_observation_or_is_poison(ruleset, messages):
    """Through decode first, as in the service: it refuses what to_observation cannot read."""
    engine = AlertEngine(ruleset)
    for message in messages:
        decoded = rejected_with_reason(lambda message=message: decode(*record(message), Tracks))
        if decoded is not None:
            observation = to_observation(decoded)
            rejected_with_reason(lambda observation=observation: engine.observe(observation))
    engine.to_state("rules-a")


@st.composite
def drift_events(draw: st.DrawFn) -> DriftEvent:
    ref = draw(refs())
    ref.camera_id = draw(st.sampled_from(["drift-any", "drift-some"]))  # cameras with drift rules
    signal = st.builds(
        SignalDrift,
        name=st.sampled_from(["brightness", "thumb_dist", "edge_dist"]) | st.text(max_size=8),
        statistic=coordinate,
        threshold=coordinate,
        value=coordinate,
        reference=coordinate,
    )
    return DriftEvent(
        event_id=draw(st.text(max_size=20)),
        state=draw(st.integers(0, 5)),
        ref=ref,
        signals=draw(st.lists(signal, max_size=3)),
        also_moving=draw(st.lists(st.text(max_size=8), max_size=2)),
        episode_start_frame_id=draw(uint64),
    )


@FUZZ_FEW
@given(st.lists(drift_events(), min_size=1, max_size=4))
def test_any_drift_record_becomes_alerts_or_is_poison(ruleset, messages):
    engine = AlertEngine(ruleset)
    for message in messages:
        decoded = rejected_with_reason(lambda message=message: decode(*record(message), DriftEvent))
        if decoded is None:
            continue
        drift = rejected_with_reason(lambda decoded=decoded: to_drift(decoded))
        if drift is not None:
            assert all(f.message and f.alert_id for f in engine.observe_drift(drift))


# --- The cameras file: services.ingest.cameras.load_cameras ----------------------------------

GOOD_CAMERAS = """\
cameras:
  - {id: cam-1, source: rtsp://10.0.0.5/stream, pace: realtime, fps: 25}
  - id: lobby.2
    source: /media/lobby.mp4
    loop: true
    max_frames: 100
"""


def load_cameras_text(folder: Path, text: str | bytes) -> Any:
    path = folder / "cameras.yaml"
    path.write_bytes(text.encode() if isinstance(text, str) else text)
    return rejected_with_reason(lambda: load_cameras(path), ConfigError)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One folder for the property tests' files (hypothesis reruns a test in one fixture)."""
    return tmp_path_factory.mktemp("hostile")


def test_the_good_cameras_file_loads(tmp_path):
    assert [c.id for c in load_cameras_text(tmp_path, GOOD_CAMERAS)] == ["cam-1", "lobby.2"]


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty file"),
        pytest.param("cameras: []", id="no cameras"),
        pytest.param("cameras:\n- {id: a b, source: x}", id="id with a space"),
        pytest.param("cameras:\n- {id: a, source: '  '}", id="blank source"),
        pytest.param("cameras:\n- {id: a, source: x, fps: -1}", id="negative fps"),
        pytest.param("cameras:\n- {id: a, source: x, fps: .nan}", id="NaN fps"),
        pytest.param("cameras:\n- {id: a, source: x, pase: fast}", id="misspelled key"),
        pytest.param("cameras:\n- {id: a, source: x}\n- {id: a, source: y}", id="duplicate ids"),
        pytest.param("cameras:\n- {id: 12, source: x}", id="numeric id"),
        pytest.param("cameras:\n- {id: [a], source: x}", id="list id"),
        pytest.param("cameras: {a: 1}", id="mapping not list"),
        pytest.param("- 1", id="a list document"),
        pytest.param("cameras:\n\t- a", id="tab"),
        pytest.param("cameras: [", id="unclosed bracket"),
        pytest.param("cameras: !!python/object/apply:os.system [ls]", id="python tag"),
        pytest.param("cameras: {? [a, b] : 1}", id="unhashable key"),
        pytest.param("a: &a [1]\ncameras: *b", id="unknown alias"),
        pytest.param("---\ncameras: []\n---\ncameras: []", id="two documents"),
        pytest.param(b"\x00\x01\x02", id="binary file"),
        pytest.param(b"\xef\xbb\xbfcameras: 3", id="BOM"),
        pytest.param(b"cameras:\n- {id: \xff\xfe, source: x}", id="not UTF-8"),
        pytest.param("cameras: " + "[" * 3000 + "]" * 3000, id="nested 3000 deep"),
        pytest.param(
            "cameras:\n- {id: a, source: x, max_frames: " + "9" * 5000 + "}",
            id="5000-digit integer",
        ),
    ],
)
def test_bad_cameras_files_are_config_errors(tmp_path, text):
    assert load_cameras_text(tmp_path, text) is None


def test_a_missing_cameras_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="cameras file"):
        load_cameras(tmp_path / "nope.yaml")


scalars = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats()
    | st.text(max_size=12)
    | st.sampled_from(["realtime", "fast", "rtsp://h/s", "cam-1", "", "-1", "yes"])
)


def yamlish(keys: list[str]) -> st.SearchStrategy[Any]:
    """Documents of mappings and lists, keys mostly the schema's own: near misses, not noise."""
    key = st.sampled_from(keys) | st.text(max_size=8) | st.integers()
    return st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(key, inner, max_size=5),
        max_leaves=25,
    )


CAMERA_KEYS = ["cameras", "id", "source", "pace", "fps", "max_frames", "loop"]
camera_files = st.fixed_dictionaries(
    {
        "cameras": st.lists(
            st.fixed_dictionaries({}, optional=dict.fromkeys(CAMERA_KEYS[1:], scalars)), max_size=3
        )
    }
)


def dump(document: Any) -> str:
    return yaml.safe_dump(document, sort_keys=False, allow_unicode=True)


@FUZZ
@given(text=st.text(max_size=300) | yamlish(CAMERA_KEYS).map(dump) | camera_files.map(dump))
def test_any_cameras_text_loads_or_is_a_config_error(scratch, text):
    load_cameras_text(scratch, text)


@FUZZ
@given(st.data())
def test_mutated_cameras_files_load_or_are_config_errors(scratch, data):
    load_cameras_text(scratch, data.draw(mutated(GOOD_CAMERAS.encode())))


# --- The rule file: services.alert.rules.parse_rules / load_rules -----------------------------

GOOD_RULES = RULES.read_text()
RULE_KEYS = sorted({name for model in RULE_TYPES.values() for name in model.model_fields})
points = st.lists(st.lists(st.integers(-5, 700) | st.floats(), max_size=3), max_size=5)
rule_values = scalars | points | st.lists(st.sampled_from(["person", "truck", "car"]), max_size=3)
rules = st.fixed_dictionaries(
    {"type": st.sampled_from(list(RULE_TYPES)) | scalars, "id": st.sampled_from(["a", "b"])},
    optional=dict.fromkeys(set(RULE_KEYS) - {"type", "id"}, rule_values),
)
rule_files = st.fixed_dictionaries(
    {
        "cameras": st.dictionaries(
            st.sampled_from(["demo", "x", ""]) | st.integers(),
            st.fixed_dictionaries({"rules": st.lists(rules, max_size=4)}),
            max_size=2,
        )
    },
    optional={
        "defaults": st.dictionaries(
            st.sampled_from(["cooldown_s", "severity", "x"]), scalars, max_size=3
        )
    },
)


def test_the_good_rule_file_loads():
    assert "rules-a" in parse_rules(GOOD_RULES).cameras


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("cameras: 3", id="cameras not a mapping"),
        pytest.param("cameras: {demo: {rules: [{id: a, type: nope}]}}", id="unknown rule type"),
        pytest.param("cameras: {demo: {rules: [{type: occupancy}]}}", id="missing keys"),
        pytest.param(
            "cameras: {demo: {rules: [{id: a, type: zone_intrusion, polygon: [[0,0],[1,1],[2,2]]"
            "}]}}",
            id="zero-area polygon",
        ),
        pytest.param(
            "cameras: {demo: {rules: [{id: a, type: zone_intrusion, polygon: [[0,0],[1e400,0],"
            "[0,1]]}]}}",
            id="infinite coordinate",
        ),
        pytest.param("cameras: {12: {rules: []}}", id="numeric camera"),
        pytest.param("cameras: {demo: {rules: []}}\ncameras: {}", id="duplicate key"),
        pytest.param("cameras: {a: &x [*x]}", id="recursive alias"),
        pytest.param("cameras: !!binary aGk=", id="binary tag"),
        pytest.param("\x00", id="NUL"),
        pytest.param("type: []", id="unhashable value of a misplaced 'type' key"),
        pytest.param("cameras: " + "[" * 3000 + "]" * 3000, id="nested 3000 deep"),
        pytest.param("defaults: {cooldown_s: " + "9" * 5000 + "}", id="5000-digit integer"),
    ],
)
def test_bad_rule_files_are_rule_file_errors(text):
    assert rejected_with_reason(lambda: parse_rules(text), RuleFileError) is None


def test_a_rule_file_that_is_not_utf8_is_a_rule_file_error(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_bytes(b"cameras: {\xff: {}}")
    with pytest.raises(RuleFileError, match="cannot read"):
        load_rules(path)


ALIAS_BOMB = (
    "a: &a [x, x, x, x, x, x, x, x, x]\n"
    + "".join(
        f"{b}: &{b} [{', '.join([f'*{a}'] * 9)}]\n"
        for a, b in zip("abcdefgh", "bcdefghi", strict=True)
    )
    + "cameras: {demo: {rules: *i}}\n"
)  # 9**9 references to one small list


def test_a_yaml_alias_bomb_is_refused_promptly():
    child = (
        "import sys\nfrom services.alert.rules import RuleFileError, parse_rules\n"
        "try:\n    parse_rules(sys.stdin.read())\nexcept RuleFileError:\n    pass\n"
    )
    subprocess.run(
        [sys.executable, "-c", child],
        input=ALIAS_BOMB,
        text=True,
        cwd=ROOT,
        timeout=5,
        check=True,
        capture_output=True,
    )


@FUZZ
@given(text=st.text(max_size=300) | yamlish(RULE_KEYS).map(dump) | rule_files.map(dump))
def test_any_rules_text_parses_or_is_a_rule_file_error(text):
    rejected_with_reason(lambda: parse_rules(text), RuleFileError)


@FUZZ
@given(st.data())
def test_mutated_rule_files_parse_or_are_rule_file_errors(data):
    text = data.draw(mutated(GOOD_RULES.encode())).decode("utf-8", "replace")
    rejected_with_reason(lambda: parse_rules(text), RuleFileError)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=200))
def test_any_rule_file_bytes_load_or_are_a_rule_file_error(scratch, content):
    path = scratch / "rules.yaml"
    path.write_bytes(content)
    rejected_with_reason(lambda: load_rules(path), RuleFileError)
