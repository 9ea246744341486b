"""Bad input goes to the dead-letter topic with a reason; the next good frame still flows."""

from __future__ import annotations

import pytest

from services.core.messages import CONTENT_TYPE, schema_headers
from steadyeye.v1.common_pb2 import FrameRef, Payload
from steadyeye.v1.detections_pb2 import Detections
from steadyeye.v1.frames_pb2 import Frame, ImageEncoding

pytestmark = pytest.mark.stack


def _frame(camera_id: str, image: bytes, encoding=ImageEncoding.IMAGE_ENCODING_JPEG, **ref):
    return Frame(
        ref=FrameRef(camera_id=camera_id, frame_id=0, **ref),
        encoding=encoding,
        image=Payload(inline=image),
    )


def corrupt_jpeg(camera_id, bus):
    frame = _frame(camera_id, b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8)
    return frame.SerializeToString(), schema_headers(frame)


def truncated_protobuf(camera_id, bus):
    frame = _frame(camera_id, bus)
    value = frame.SerializeToString()
    return value[: len(value) // 2], schema_headers(frame)


def unknown_schema_version(camera_id, bus):
    frame = _frame(camera_id, bus)
    return frame.SerializeToString(), [
        ("content-type", CONTENT_TYPE),
        ("schema", b"steadyeye.v2.Frame"),
    ]


def missing_schema_header(camera_id, bus):
    return _frame(camera_id, bus).SerializeToString(), []


def empty_payload(camera_id, bus):
    return b"", schema_headers(Frame())


def wrong_size_raw_frame(camera_id, bus):
    frame = _frame(
        camera_id, b"\x00" * 1000, ImageEncoding.IMAGE_ENCODING_BGR24, width=640, height=480
    )
    return frame.SerializeToString(), schema_headers(frame)


def unknown_encoding(camera_id, bus):
    frame = _frame(camera_id, bus, encoding=7)
    return frame.SerializeToString(), schema_headers(frame)


@pytest.mark.parametrize(
    ("make_record", "reason"),
    [
        (corrupt_jpeg, "cannot decode image"),
        (truncated_protobuf, "cannot parse steadyeye.v1.Frame"),
        (unknown_schema_version, "unknown schema 'steadyeye.v2.Frame'"),
        (missing_schema_header, "missing 'schema' header"),
        (empty_payload, "empty payload"),
        (wrong_size_raw_frame, "640x480x3 needs 921600"),
        (unknown_encoding, "unsupported image encoding 7"),
    ],
    ids=lambda v: getattr(v, "__name__", None),
)
def test_bad_frame_is_dead_lettered_and_the_next_good_one_processed(
    pipeline, camera_id, bus_jpg, make_record, reason
):
    value, headers = make_record(camera_id, bus_jpg)
    pipeline.send_raw(value, headers, camera_id)
    pipeline.send_frame(camera_id, 1, bus_jpg)

    [good] = pipeline.read_messages(pipeline.topics.detections, Detections, camera_id, 1)
    reasons = pipeline.dead_letters(camera_id, 1)

    assert good.ref.frame_id == 1
    assert len(reasons) == 1 and reason in reasons[0], reasons
