"""The explorer's web server: the page and a JSON API over :mod:`deltaprop.explore.engine`.

Built on Starlette, served by uvicorn (extra ``[explore]``); both are imported only when a server is made, so this
module imports without them. The server

* binds to 127.0.0.1 by default, on a free port (``port=0``) or the one given;
* answers only requests whose ``Host`` is its own address (127.0.0.1:port, localhost:port, [::1]:port) and whose
  ``Origin``, when a browser sends one, is that same address; anything else gets 403 — so neither another web site
  nor a DNS-rebinding page can drive it;
* keeps every session in memory (at most ``LIMITS["max_sessions"]``) and writes no file at all;
* refuses request bodies over 64 kB (JSON) or 2 MB (CSV upload) with 413, and bad input with a 4xx JSON
  ``{"error": "…"}`` that the page shows as it is.

API (all JSON; ``{sid}`` is the id ``POST /api/session`` returns):

==========================================  ==========================================================
``GET  /api/info``                          choices (examples, datasets, activations, losses) and limits
``POST /api/session``                       a new session; with ``{"example": …}`` it builds the model too
``GET  /api/session/{sid}``                 the model's state (``?grid=48`` adds decision regions)
``DELETE /api/session/{sid}``               forget the session
``POST /api/session/{sid}/model``           build: ``{"example": "worked" | "one_weight" | "custom", …}``
``POST /api/session/{sid}/reset``           rebuild the model with the same settings
``POST /api/session/{sid}/trace``           one backpropagation step, number by number (updates the model)
``POST /api/session/{sid}/train``           ``{"steps": k}`` training steps (``"grid": true`` for regions)
``GET  /api/session/{sid}/grid``            decision regions of a 2-D classifier (``?size=60``)
``POST /api/session/{sid}/upload``          a CSV file as the body (``?target=column&task=…&name=file.csv``)
==========================================  ==========================================================
"""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..backend import require
from .engine import LIMITS, ExploreError, SessionStore, options

if TYPE_CHECKING:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import Response

__all__ = ["create_app", "ExplorerServer", "STATIC_DIR", "JSON_LIMIT", "allowed_hosts"]

STATIC_DIR = Path(__file__).resolve().parent / "static"
#: the largest JSON request body accepted (bytes)
JSON_LIMIT = 64 * 1024

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

log = logging.getLogger("deltaprop.explore")

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "object-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
)
_SECURITY_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
]


def allowed_hosts(port: int, host: str = "127.0.0.1") -> set[str]:
    """The ``Host`` header values the server answers: its own loopback address and port (and ``host`` if other).

    >>> sorted(allowed_hosts(8000))
    ['127.0.0.1:8000', '[::1]:8000', 'localhost:8000']
    """
    names = {"127.0.0.1", "localhost", "[::1]"}
    if host not in ("", "0.0.0.0", "::"):
        names.add(f"[{host}]" if ":" in host and not host.startswith("[") else host)
    hosts = {f"{name}:{port}" for name in names}
    if port == 80:
        hosts |= names
    return {h.lower() for h in hosts}


class _Guard:
    """ASGI middleware: 403 for a foreign Host or Origin, security headers on every response."""

    def __init__(self, app: ASGIApp, hosts: set[str]) -> None:
        self.app = app
        self.hosts = hosts
        self.origins = {f"http://{h}" for h in hosts}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        reason = self._refusal(headers)
        if reason is not None or scope["type"] == "websocket":
            await _send_json(send, 403, {"error": reason or "websockets are not served"})
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                extra = list(_SECURITY_HEADERS)
                if str(scope.get("path", "")).startswith("/api/"):
                    extra.append((b"cache-control", b"no-store"))
                message["headers"] = [*message.get("headers", []), *extra]
            await send(message)

        await self.app(scope, receive, send_with_headers)

    def _refusal(self, headers: dict[str, str]) -> str | None:
        host = headers.get("host", "").strip().lower()
        if host not in self.hosts:
            return f"this server answers only requests for its own address, not for host {host!r}"
        origin = headers.get("origin")
        if origin is not None and origin.strip().lower() not in self.origins:
            return f"requests from other origins ({origin!r}) are refused"
        if headers.get("sec-fetch-site", "") in ("cross-site", "same-site"):
            return "cross-site requests are refused"
        return None


async def _send_json(send: Send, status: int, payload: dict[str, Any]) -> None:
    body = json.dumps(payload).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        *_SECURITY_HEADERS,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class _TooLarge(ExploreError):
    status = 413


class _BadType(ExploreError):
    status = 415


async def _read_body(request: Request, limit: int, what: str = "the request body") -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _TooLarge(f"{what} is {int(declared):,} bytes; the limit is {limit:,} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _TooLarge(f"{what} is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


async def _json_body(request: Request) -> dict[str, Any]:
    data = await _read_body(request, JSON_LIMIT)
    if not data.strip():
        return {}
    ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if ctype != "application/json":
        raise _BadType(f"send JSON with Content-Type: application/json (got {ctype or 'none'!r})")
    try:
        body = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ExploreError(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(body, dict):
        raise ExploreError("the request body must be a JSON object")
    return body


def _query_int(request: Request, key: str, default: int | None, low: int, high: int) -> int | None:
    raw = request.query_params.get(key)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ExploreError(f"{key} must be a whole number, got {raw!r}") from None
    if not low <= value <= high:
        raise ExploreError(f"{key} must be between {low} and {high}, got {value}")
    return value


def create_app(*, port: int, host: str = "127.0.0.1", store: SessionStore | None = None) -> Starlette:
    """The explorer as an ASGI app that answers only requests addressed to ``host``/loopback at ``port``."""
    require("starlette", "explore", "The explorer")
    from starlette.applications import Starlette
    from starlette.concurrency import run_in_threadpool
    from starlette.exceptions import HTTPException
    from starlette.middleware import Middleware
    from starlette.responses import FileResponse, JSONResponse
    from starlette.routing import Mount, Route
    from starlette.staticfiles import StaticFiles

    sessions = store if store is not None else SessionStore()

    def api(handler: Callable[[Request], Awaitable[Any]]) -> Callable[[Request], Awaitable[Response]]:
        async def endpoint(request: Request) -> Response:
            try:
                result = await handler(request)
            except ExploreError as exc:
                return JSONResponse({"error": str(exc)}, status_code=exc.status)
            except (ValueError, TypeError) as exc:  # the library's own checks (e.g. a bad configuration)
                return JSONResponse({"error": str(exc)}, status_code=400)
            except Exception:  # pragma: no cover - a bug: say so without leaking the traceback to the page
                log.exception("explorer request failed")
                return JSONResponse({"error": "internal error in the explorer (see the server's log)"}, 500)
            status = 201 if request.method == "POST" and request.url.path == "/api/session" else 200
            return JSONResponse(result, status_code=status)

        return endpoint

    def session_of(request: Request) -> Any:
        return sessions.get(str(request.path_params["sid"]))

    async def index(request: Request) -> Response:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8")

    async def info(request: Request) -> Any:
        return options()

    async def new_session(request: Request) -> Any:
        body = await _json_body(request)
        session = sessions.create()
        if body.get("example") is not None:
            try:
                return await run_in_threadpool(session.build, body)
            except Exception:
                sessions.delete(session.id)
                raise
        return {"session": session.id, "limits": dict(LIMITS)}

    async def get_state(request: Request) -> Any:
        grid = _query_int(request, "grid", None, 4, int(LIMITS["max_grid"]))
        return await run_in_threadpool(session_of(request).state, grid)

    async def delete_session(request: Request) -> Any:
        sessions.delete(str(request.path_params["sid"]))
        return {"deleted": True}

    async def build(request: Request) -> Any:
        body = await _json_body(request)
        return await run_in_threadpool(session_of(request).build, body)

    async def reset(request: Request) -> Any:
        await _json_body(request)
        return await run_in_threadpool(session_of(request).reset)

    async def trace(request: Request) -> Any:
        body = await _json_body(request)
        return await run_in_threadpool(session_of(request).trace, body)

    async def train(request: Request) -> Any:
        body = await _json_body(request)
        return await run_in_threadpool(session_of(request).train, body)

    async def grid(request: Request) -> Any:
        size = _query_int(request, "size", 48, 4, int(LIMITS["max_grid"]))
        assert size is not None
        return await run_in_threadpool(session_of(request).grid, size)

    async def upload(request: Request) -> Any:
        session = session_of(request)
        ctype = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if ctype not in ("text/csv", "text/plain", "application/octet-stream", "application/vnd.ms-excel", ""):
            raise _BadType(f"send the CSV file itself as the body (Content-Type text/csv), not {ctype!r}")
        data = await _read_body(request, int(LIMITS["max_upload_bytes"]), "the file")
        q = request.query_params
        return await run_in_threadpool(
            lambda: session.set_upload(data, target=q.get("target"), task=q.get("task"), name=q.get("name", "upload"))
        )

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        message = str(exc.detail)
        if exc.status_code == 404:
            what = "API endpoint" if request.url.path.startswith("/api/") else "page or file"
            message = f"no such {what}: {request.method} {request.url.path}"
        elif exc.status_code == 405:
            message = f"method {request.method} not allowed for {request.url.path}"
        return JSONResponse({"error": message}, status_code=exc.status_code)

    sid = "/api/session/{sid:str}"
    routes = [
        Route("/", index, methods=["GET"]),
        Route("/api/info", api(info), methods=["GET"]),
        Route("/api/session", api(new_session), methods=["POST"]),
        Route(sid, api(get_state), methods=["GET"]),
        Route(sid, api(delete_session), methods=["DELETE"]),
        Route(sid + "/model", api(build), methods=["POST"]),
        Route(sid + "/reset", api(reset), methods=["POST"]),
        Route(sid + "/trace", api(trace), methods=["POST"]),
        Route(sid + "/train", api(train), methods=["POST"]),
        Route(sid + "/grid", api(grid), methods=["GET"]),
        Route(sid + "/upload", api(upload), methods=["POST"]),
        Mount("/static", app=StaticFiles(directory=STATIC_DIR), name="static"),
    ]
    return Starlette(
        routes=routes,
        middleware=[Middleware(_Guard, hosts=allowed_hosts(port, host))],  # type: ignore[arg-type]
        exception_handlers={HTTPException: http_error},
    )


def _bind(host: str, port: int) -> socket.socket:
    if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
        raise ValueError(f"port must be a whole number from 0 (any free port) to 65535, got {port!r}")
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(address)
    except OSError as exc:
        sock.close()
        raise OSError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.listen(128)
    sock.setblocking(False)
    return sock


class ExplorerServer:
    """The explorer on a real socket: ``serve()`` blocks; ``start()``/``stop()`` (or ``with``) run it in a thread.

    The socket is bound when the object is made, so ``url`` is known (with the port the system chose for
    ``port=0``) before serving starts.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 0, *, log_level: str = "warning") -> None:
        require("uvicorn", "explore", "The explorer")
        import uvicorn

        self.host = host
        self.socket = _bind(host, port)
        self.port = int(self.socket.getsockname()[1])
        self.app = create_app(port=self.port, host=host)
        config = uvicorn.Config(self.app, log_level=log_level, access_log=False, lifespan="off")
        self._server = uvicorn.Server(config)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The page's address, e.g. ``http://127.0.0.1:53117/``."""
        shown = "127.0.0.1" if self.host in ("", "0.0.0.0", "localhost") else self.host
        if shown == "::":
            shown = "::1"
        if ":" in shown and not shown.startswith("["):
            shown = f"[{shown}]"
        return f"http://{shown}:{self.port}/"

    def serve(self) -> None:
        """Serve until interrupted (Ctrl+C)."""
        self._server.run(sockets=[self.socket])

    def start(self, timeout: float = 10.0) -> ExplorerServer:
        """Serve in a background thread; return once the server accepts connections."""
        self._thread = threading.Thread(target=self.serve, name="deltaprop-explore", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the explorer server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop a server started with ``start()``."""
        self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        self.socket.close()

    def __enter__(self) -> ExplorerServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
