"""The console's pages and their data, as a Starlette app: server-rendered Jinja templates, a few
lines of inline JavaScript to refresh tiles and figures, no build step."""

from __future__ import annotations

import secrets
import time
from pathlib import Path
from urllib.parse import urlencode

import redis
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.applications import Starlette
from starlette.datastructures import URL
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route
from starlette.templating import Jinja2Templates
from starlette.types import ASGIApp, Receive, Scope, Send

from services.console.live import AlertView, LiveView
from services.console.settings import ConsoleSettings
from services.console.tiles import Tiles
from services.core.health import Health

TEMPLATES = Jinja2Templates(directory=Path(__file__).with_name("templates"))
TEMPLATES.env.filters["datetime"] = lambda seconds: time.strftime(
    "%Y-%m-%d %H:%M:%S", time.gmtime(seconds)
)
COOKIE = "steadyeye_console"
OPEN_PATHS = ("/healthz", "/readyz", "/metrics")  # probes and Prometheus carry no token
SNAPSHOT_PREFIX = "steadyeye:snapshot:"


def build_app(
    settings: ConsoleSettings,
    view: LiveView,
    tiles: Tiles,
    snapshots: redis.Redis,
    health: Health,
) -> Starlette:
    def page(request: Request, name: str, **context: object) -> Response:
        return TEMPLATES.TemplateResponse(
            request, name, {"refresh_ms": settings.refresh_ms, "trace": trace_link, **context}
        )

    def trace_link(trace_id: str) -> str:
        return (
            settings.trace_url.format(trace_id=trace_id) if settings.trace_url and trace_id else ""
        )

    async def cameras(request: Request) -> Response:
        return page(request, "cameras.html", cameras=view.health(), rollouts=view.rollouts())

    async def camera(request: Request) -> Response:
        camera_id = request.path_params["camera_id"]
        found = view.health(camera_id)
        if not found:
            raise HTTPException(404, f"no camera {camera_id!r} seen yet")
        return page(
            request,
            "camera.html",
            camera=found[0],
            alerts=view.alerts(camera_id),
            rollouts=view.rollouts(),
        )

    async def alerts(request: Request) -> Response:
        name = "alert_rows.html" if request.query_params.get("rows") else "alerts.html"
        return page(request, name, alerts=view.alerts())

    def frame(request: Request) -> Response:  # sync: Starlette runs it in its thread pool
        frame_id, data = tiles.jpeg(request.path_params["camera_id"])
        headers = {"Cache-Control": "no-store"}
        if frame_id is not None:
            headers["X-Steadyeye-Frame-Id"] = str(frame_id)
        return Response(data, media_type="image/jpeg", headers=headers)

    def snapshot(request: Request) -> Response:
        found: AlertView | None = view.alert(request.path_params["alert_id"])
        # Only a key an alert named, and only a snapshot's: the console reads nothing else.
        if found is None or not found.snapshot_key.startswith(SNAPSHOT_PREFIX):
            raise HTTPException(404, "no snapshot for this alert")
        data = snapshots.get(found.snapshot_key)
        if data is None:
            raise HTTPException(404, "the snapshot has expired")
        return Response(data, media_type="image/jpeg", headers={"Cache-Control": "max-age=3600"})

    async def state(request: Request) -> Response:
        return JSONResponse(
            {
                "cameras": [
                    {**health_row, "trace_url": trace_link(health_row["trace_id"])}
                    for health_row in view.health(request.query_params.get("camera"))
                ],
                "rollouts": view.rollouts(),
                "alerts": len(view.alerts()),
            }
        )

    async def healthz(_: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(_: Request) -> Response:
        ok, why = health.ready()
        return PlainTextResponse(why or "ready", status_code=200 if ok else 503)

    async def metrics(_: Request) -> Response:
        return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    app = Starlette(
        routes=[
            Route("/", cameras),
            Route("/cameras/{camera_id:path}/frame.jpg", frame),
            Route("/cameras/{camera_id:path}", camera),
            Route("/alerts", alerts),
            Route("/alerts/{alert_id}/snapshot.jpg", snapshot),
            Route("/api/state", state),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics),
        ]
    )
    if settings.token is None:
        return app
    return TokenGuard(app, settings.token.get_secret_value())


class TokenGuard:
    """Every page needs the token: as `Authorization: Bearer`, or once as `?token=`, which is
    traded for an HttpOnly cookie and dropped from the address (so it stays out of history)."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self._app = app
        self._token = token

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in OPEN_PATHS:
            await self._app(scope, receive, send)
            return
        request = Request(scope)
        given = request.query_params.get("token")
        if given is not None and self._matches(given):
            kept = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
            target = URL(scope=scope).replace(query=urlencode(kept))
            response = RedirectResponse(str(target.path) + (f"?{target.query}" if kept else ""))
            response.set_cookie(COOKIE, given, httponly=True, samesite="strict")
            await response(scope, receive, send)
            return
        bearer = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        if self._matches(bearer) or self._matches(request.cookies.get(COOKIE, "")):
            await self._app(scope, receive, send)
            return
        await PlainTextResponse("a token is required (STEADYEYE_CONSOLE_TOKEN)", 401)(
            scope, receive, send
        )

    def _matches(self, given: str) -> bool:
        return bool(given) and secrets.compare_digest(given.encode(), self._token.encode())
