"""Who may use the server and for how long: the Host allow-list, browser origins, the API key,
per-client rate limits, and the time a request's headers and body may take.

:class:`GuardMiddleware` checks every HTTP request and websocket handshake, in this order:

1. ``Host`` must be allowed (against DNS rebinding: a page on another site that resolves its
   name to 127.0.0.1 sends its own name as Host): 400 ``bad_host``.
2. Under ``/v1/``: a browser's ``Origin`` (on a websocket, or a POST) must be the server's own
   or listed in ``allowed_origins``: 403 ``origin_not_allowed``.
3. Under ``/v1/``, when an API key is set: ``Authorization: Bearer <key>`` or ``X-API-Key``,
   compared in constant time: 401 ``unauthorized``. ``/health``, the web page and the docs
   stay open.
4. Under ``/v1/``, when ``rate_limit`` is set: a token bucket per client address: 429
   ``rate_limited`` with ``Retry-After``.
5. The request body must arrive within ``body_timeout`` seconds of the headers: 408
   ``request_timeout`` (and the connection closes).

A refused websocket is closed before it is accepted (the client sees HTTP 403).
:class:`GuardedH11Protocol` closes a connection whose request headers take longer than
``header_timeout`` (uvicorn only times out idle keep-alive connections).

Examples:
    >>> clean("GET /x\\n2024-01-01 INFO fake line")
    'GET /x\\\\n2024-01-01 INFO fake line'
    >>> host_name("[::1]:8000"), host_name("Example.COM:80")
    ('[::1]', 'example.com')
"""

from __future__ import annotations

import asyncio
import collections
import functools
import hmac
import json
import logging
import math
import re
import time
from urllib.parse import urlsplit

import anyio
from uvicorn.protocols.http.h11_impl import H11Protocol

from emovox.serving.limits import ApiError, ServerSettings

log = logging.getLogger("emovox.serving")

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "[::1]")
WILDCARD_BINDS = ("", "0.0.0.0", "::", "[::]")
MAX_BUCKETS = 10000  # client addresses remembered by the rate limiter


def clean(text: object) -> str:
    """``text`` with control characters (newlines included) escaped: safe for one log line."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), str(text))


class CleanFormatter(logging.Formatter):
    """Escapes control characters in the message (not in tracebacks): no request can forge a line."""

    def formatMessage(self, record: logging.LogRecord) -> str:
        record.message = clean(record.message)
        return super().formatMessage(record)


def host_name(value: str) -> str:
    """The host of a Host header or an allow-list entry: lower case, without the port; IPv6 in brackets."""
    value = value.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    if value.count(":") > 1:  # a bare IPv6 address
        return f"[{value}]"
    return value.split(":", 1)[0]


def default_hosts(bind: str) -> tuple[str, ...] | None:
    """The default Host allow-list for a bind address; None (any Host) for a wildcard bind."""
    if bind.strip() in WILDCARD_BINDS:
        return None
    return (*LOOPBACK_HOSTS, host_name(bind))


class RateLimiter:
    """A token bucket per client address: ``rate`` requests per second, ``burst`` at once.

    Examples:
        >>> limiter = RateLimiter(rate=1.0, burst=2)
        >>> [limiter.wait("a", now=0.0) for _ in range(3)]
        [0.0, 0.0, 1.0]
        >>> limiter.wait("a", now=1.0), limiter.wait("b", now=1.0)
        (0.0, 0.0)
    """

    def __init__(self, rate: float, burst: int):
        self.rate, self.burst = rate, burst
        self.buckets: collections.OrderedDict[str, tuple[float, float]] = collections.OrderedDict()

    def wait(self, client: str, now: float | None = None) -> float:
        """Take a token for ``client``: 0 if there was one, else the seconds until there is."""
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.pop(client, (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - last) * self.rate)
        if tokens >= 1.0:
            tokens -= 1.0
            wait = 0.0
        else:
            wait = (1.0 - tokens) / self.rate
        self.buckets[client] = (tokens, now)
        while len(self.buckets) > MAX_BUCKETS:
            self.buckets.popitem(last=False)
        return wait


class GuardMiddleware:
    """Pure ASGI middleware enforcing the rules in the module docstring."""

    def __init__(self, app, settings: ServerSettings):
        self.app, self.settings = app, settings
        hosts = settings.allowed_hosts if settings.allowed_hosts is not None else default_hosts(settings.host)
        self.any_host = hosts is None or "*" in hosts
        self.hosts = {host_name(h) for h in hosts or () if not h.startswith("*.")}
        self.host_suffixes = tuple(h[1:].lower() for h in hosts or () if h.startswith("*."))
        self.any_origin = "*" in settings.allowed_origins
        self.origins = {o.strip().rstrip("/").lower() for o in settings.allowed_origins}
        self.key = settings.api_key.encode() if settings.api_key else None
        burst = settings.rate_burst or max(1, math.ceil(2 * settings.rate_limit))
        self.limiter = RateLimiter(settings.rate_limit, burst) if settings.rate_limit > 0 else None

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = _headers(scope)
        try:
            self.check(scope, headers)
        except ApiError as error:
            return await self.refuse(scope, receive, send, error)
        if scope["type"] == "http":
            receive = _deadline(receive, self.settings.body_timeout)
        await self.app(scope, receive, send)

    def check(self, scope, headers: dict[str, str]) -> None:
        host = headers.get("host")
        if host is not None and not self.host_allowed(host):
            raise ApiError(400, "bad_host", f"Host {clean(host[:100])!r} is not served here (see --allowed-hosts)")
        if not scope["path"].startswith("/v1/"):
            return
        origin = headers.get("origin")
        if origin is not None and (scope["type"] == "websocket" or scope["method"] not in ("GET", "HEAD", "OPTIONS")):
            if not self.origin_allowed(origin, host):
                raise ApiError(403, "origin_not_allowed", f"requests from the web page at {clean(origin[:100])!r} "
                               "are not allowed (see --allowed-origins)")
        if self.key is not None and not self.authorised(headers):
            raise ApiError(401, "unauthorized", "this server needs an API key: send 'Authorization: Bearer <key>' "
                           "or 'X-API-Key: <key>'")
        if self.limiter is not None:
            client = (scope.get("client") or ("-",))[0]
            wait = self.limiter.wait(client)
            if wait > 0:
                error = ApiError(429, "rate_limited", f"over {self.settings.rate_limit:g} requests per second; "
                                 f"retry in {wait:.1f} s")
                error.retry_after = max(1, math.ceil(wait))
                raise error

    def host_allowed(self, host: str) -> bool:
        if self.any_host:
            return True
        name = host_name(host)
        return name in self.hosts or any(name.endswith(s) for s in self.host_suffixes)

    def origin_allowed(self, origin: str, host: str | None) -> bool:
        origin = origin.strip().rstrip("/").lower()
        if self.any_origin or origin in self.origins:
            return True
        # the server's own page: the origin names the host the request was sent to
        netloc = urlsplit(origin).netloc if "://" in origin else ""
        return bool(netloc) and host is not None and netloc == host.strip().lower()

    def authorised(self, headers: dict[str, str]) -> bool:
        given = headers.get("x-api-key")
        if given is None:
            scheme, _, token = headers.get("authorization", "").partition(" ")
            given = token.strip() if scheme.lower() == "bearer" else ""
        return hmac.compare_digest(given.encode("latin-1", "replace"), self.key)

    async def refuse(self, scope, receive, send, error: ApiError) -> None:
        rid = scope.get("state", {}).get("request_id")
        if scope["type"] == "websocket":
            log.info("websocket %s refused: %d %s", clean(scope["path"]), error.status, error.code)
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": 1008})  # before accept: HTTP 403
            return
        headers = [(b"content-type", b"application/json")]
        if error.status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="emovox"'))
        if error.status in (429, 503):
            headers.append((b"retry-after", str(getattr(error, "retry_after", 1)).encode()))
        body = json.dumps(error.body(rid)).encode()
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": error.status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _headers(scope) -> dict[str, str]:
    return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers") or []}


def _deadline(receive, seconds: float):
    """``receive`` that raises 408 when the body is not complete ``seconds`` after the request began."""
    deadline = time.monotonic() + seconds
    done = False

    async def guarded():
        nonlocal done
        if done:
            return await receive()
        remaining = deadline - time.monotonic()
        try:
            if remaining <= 0:
                raise TimeoutError
            with anyio.fail_after(remaining):
                message = await receive()
        except TimeoutError:
            done = True
            raise ApiError(408, "request_timeout", f"the request body did not arrive within {seconds:g} s") from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            done = True
        return message

    return guarded


@functools.cache
def _env_header_timeout() -> float:
    return ServerSettings.from_env().header_timeout


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, closing a connection whose request headers do not arrive within
    ``header_timeout`` seconds of the connection or of its first byte after a previous request.
    The timeout is the class attribute if set (one process), else the settings in the
    environment (``emovox serve --workers``)."""

    header_timeout: float | None = None

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self._header_timeout = self.header_timeout if self.header_timeout is not None else _env_header_timeout()
        self._header_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport) -> None:
        super().connection_made(transport)
        self._arm()

    def data_received(self, data: bytes) -> None:
        waiting = self.cycle is None or self.cycle.response_complete
        previous = self.cycle
        super().data_received(data)
        if self.cycle is not previous and self.cycle is not None:
            self._disarm()  # the headers of a request arrived
        elif waiting and self._header_timer is None:
            self._arm()  # the first bytes of the next request

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.cycle is not None and not self.cycle.response_complete:
            self._disarm()  # a pipelined request started

    def handle_websocket_upgrade(self, event) -> None:
        self._disarm()
        super().handle_websocket_upgrade(event)

    def connection_lost(self, exc) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        if self._header_timeout and self._header_timeout > 0:
            self._header_timer = self.loop.call_later(self._header_timeout, self._timed_out)

    def _disarm(self) -> None:
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _timed_out(self) -> None:
        self._header_timer = None
        if self.transport.is_closing() or (self.cycle is not None and not self.cycle.response_complete):
            return
        body = b'{"error": {"status": 408, "code": "request_timeout", "message": "the request headers took too long"}}'
        self.transport.write(b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
                             b"content-length: %d\r\n\r\n%s" % (len(body), body))
        self.transport.close()
