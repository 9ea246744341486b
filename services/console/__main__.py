"""`python -m services.console` / `steadyeye console`: the read-only web console."""

from __future__ import annotations

import logging
import sys
from typing import NoReturn

import uvicorn
from kafka.errors import KafkaError

from services.alert.rules import RuleFileError, load_rules
from services.console.app import build_app
from services.console.feed import Feed
from services.console.live import LiveView
from services.console.settings import ConsoleSettings, is_loopback
from services.console.tiles import Tiles
from services.core import logs
from services.core.claimcheck import connect, open_store
from services.core.errors import ConfigError
from services.core.health import Health
from services.core.settings import (
    ClaimCheckSettings,
    KafkaSettings,
    RedisSettings,
    TopicSettings,
    load,
)
from steadyeye.annotate import Overlay, overlay_of

log = logging.getLogger("services.console")


def _fail(message: str) -> NoReturn:
    print(f"steadyeye console: {message}", file=sys.stderr)
    raise SystemExit(1)


def overlays(settings: ConsoleSettings) -> dict[str, Overlay]:
    if settings.rules_file is None:
        return {}
    try:
        rules = load_rules(settings.rules_file)
    except (RuleFileError, OSError) as exc:
        _fail(str(exc))
    return {camera_id: overlay_of(camera) for camera_id, camera in rules.cameras.items()}


def main() -> None:
    try:
        settings = load(ConsoleSettings)
        kafka_settings, topics = load(KafkaSettings), load(TopicSettings)
        redis_settings, claim_check = load(RedisSettings), load(ClaimCheckSettings)
    except ConfigError as exc:
        _fail(str(exc))
    logs.configure("console", settings.log_level)
    view = LiveView(settings.alerts_kept)
    client = connect(redis_settings)
    tiles = Tiles(view, open_store(claim_check, lambda: client), overlays(settings))
    health = Health(settings.watchdog_s)
    health.set("started", True)
    try:
        feed = Feed(kafka_settings, topics, view, settings.alerts_kept, health)
    except KafkaError as exc:
        _fail(
            f"cannot reach Kafka at {kafka_settings.bootstrap_servers} ({exc}); check "
            "STEADYEYE_KAFKA_BOOTSTRAP_SERVERS and the broker"
        )
    feed.start()
    where = f"http://{settings.http_host}:{settings.http_port}/"
    guard = "" if settings.token is None else " (token required)"
    if is_loopback(settings.http_host):
        guard += "; this machine only"
    log.info("console on %s%s", where, guard)
    try:
        uvicorn.run(
            build_app(settings, view, tiles, client, health),
            host=settings.http_host,
            port=settings.http_port,
            log_level="warning",
            access_log=False,
        )
    finally:
        feed.stop()


if __name__ == "__main__":
    main()
