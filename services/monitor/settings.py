from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator

from services.core.settings import ServiceSettings, group


class MonitorSettings(ServiceSettings):
    """Per-camera drift monitoring (docs/design/drift-monitor.md for why these defaults)."""

    model_config = group("MONITOR")

    # Frames a camera's reference is learned from (50 s at 10 fps).
    warmup_frames: int = Field(500, ge=50)
    # Expected frames between false alarms per camera, which the thresholds are calibrated to.
    ert_frames: int = Field(10_000, ge=100)
    # CUSUM allowance and clip, in the reference's robust scales: only shifts of about twice the
    # allowance count, since a scene wanders by 4-5 scales beyond any warm-up.
    allowance: float = Field(4.0, gt=0)
    clip: float = Field(12.0, gt=0)
    # No threshold below this: a change must persist (at the clip, about 10 frames) to alarm.
    min_threshold: float = Field(80.0, gt=0)
    # An episode ends after this many frames with every signal back within the allowance.
    end_calm_frames: int = Field(50, ge=1)
    # The lowest score detections carry (the fused model's threshold, or inference's
    # STEADYEYE_INFERENCE_MIN_SCORE when higher): near_threshold_share counts boxes within 0.1.
    score_threshold: float = Field(0.25, ge=0, lt=1)
    # One reference per time-of-day bucket, e.g. "day=7-19,night=19-7" (hours, in `timezone`,
    # of the frame's capture time); empty: one reference round the clock.
    time_buckets: str = ""
    timezone: str = "UTC"
    # Every this many frames a point of each signal goes to the camera's history (what
    # `steadyeye monitor status --plot` draws), keeping the last `history_points`.
    history_every: int = Field(10, ge=1)
    history_points: int = Field(2000, ge=10)

    @field_validator("time_buckets")
    @classmethod
    def _buckets(cls, value: str) -> str:
        parse_buckets(value)
        return value

    @field_validator("timezone")
    @classmethod
    def _timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Berlin)") from exc
        return value


def parse_buckets(text: str) -> list[tuple[str, int, int]]:
    """ "day=7-19,night=19-7" -> [(name, first hour, hour it ends)]; every hour in one bucket."""
    if not text.strip():
        return []
    buckets = []
    for part in text.split(","):
        name, _, hours = part.strip().partition("=")
        start, _, end = hours.partition("-")
        if not name or not start.strip().isdigit() or not end.strip().isdigit():
            raise ValueError(f"time bucket {part.strip()!r}: write it as name=FROM-TO (hours)")
        first, last = int(start), int(end)
        if not (0 <= first < 24 and 0 <= last <= 24) or first == last % 24:
            raise ValueError(f"time bucket {part.strip()!r}: hours 0-24, FROM != TO")
        buckets.append((name.strip(), first, last))
    if any(sum(_covers(b, h) for b in buckets) != 1 for h in range(24)):
        raise ValueError(f"time buckets {text!r} must cover each hour of the day exactly once")
    return buckets


def _covers(bucket: tuple[str, int, int], hour: int) -> bool:
    _, first, last = bucket
    return first <= hour < last if first < last else hour >= first or hour < last % 24


def bucket_of_hour(buckets: list[tuple[str, int, int]], hour: int) -> str | None:
    return next((bucket[0] for bucket in buckets if _covers(bucket, hour)), None)
