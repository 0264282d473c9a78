"""moto's WSGI app behind a keep-alive HTTP/1.1 server, with moto's per-request waste cached.

moto's `ThreadedMotoServer` runs werkzeug's development server, which closes the
connection after every response: each SDK call then pays a TCP connect on the client and
a new thread on the server, about a third of the stand-in's cost per request. This server
keeps connections open (one thread per connection, as werkzeug does per request) and
reads each request body whole, so nothing is left on the socket between requests.

It also caches what moto recomputes although the answer cannot have changed: the backend
matched to a Host header (a scan of a few hundred URL patterns), the names of a response
class's methods (`inspect.getmembers`) and, within one request, the operation it calls
(routed four times per request).
"""

from __future__ import annotations

import contextlib
import inspect
import io
import logging
import socket
import threading
import traceback
from collections.abc import Callable, Iterable
from typing import Any

from moto.core import responses as moto_responses
from moto.moto_server.werkzeug_app import (
    DomainDispatcherApplication,
    MotoRequestHandler,
    create_backend_app,
)
from werkzeug.exceptions import InternalServerError
from werkzeug.serving import ThreadedWSGIServer

__all__ = ["KeepAliveMotoServer"]

_werkzeug_log = logging.getLogger("werkzeug")
_NO_BODY_CODES = {204, 304}


class _MethodNames:
    """`name in` answers what moto's list of a class's function names would, without the list."""

    def __init__(self, cls: type) -> None:
        self._cls = cls

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and inspect.isfunction(getattr(self._cls, name, None))


def _method_names_from_class(cls: type) -> _MethodNames:
    # Looked up at call time, so glue that adds handlers to a response class is seen.
    return _MethodNames(cls)


# moto's call_action only asks `action in method_names_from_class(cls)`.
moto_responses.method_names_from_class = _method_names_from_class

_find_action = moto_responses.BaseResponse._get_action


def _action_once(response: Any) -> Any:
    """moto's `_get_action`, worked out once per request rather than four times.

    Each call routes the request through the service's URL rules again; the answer only
    changes with the request, which is what the cache is keyed on.
    """
    request = getattr(response, "normalized_request", None)
    cached = response.__dict__.get("_bridge_action")
    if request is not None and cached is not None and cached[0] is request:
        return cached[1]
    action = _find_action(response)
    if request is not None:
        response.__dict__["_bridge_action"] = (request, action)
    return action


moto_responses.BaseResponse._get_action = _action_once


WsgiApp = Callable[[dict[str, Any], Callable[..., Any]], Iterable[bytes]]


class _Dispatcher(DomainDispatcherApplication):  # type: ignore[misc]  # moto is untyped
    """moto's dispatcher, remembering which backend serves each Host header; requests
    signed for a service moto lacks go to the app the stand-in serves it with."""

    def __init__(self, services: dict[str, WsgiApp]) -> None:
        super().__init__(create_backend_app)
        self._backend_of: dict[str | None, Any] = {}
        self._services = services

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Any:
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        for name, app in self._services.items():
            if f"/{name}/aws4_request" in authorization:
                return app(environ, start_response)
        return super().__call__(environ, start_response)

    def get_backend_for_host(self, host: str | None) -> Any:
        # Called under the dispatcher's lock; the URL patterns never change at run time.
        if host not in self._backend_of:
            self._backend_of[host] = super().get_backend_for_host(host)
        return self._backend_of[host]


class _KeepAliveHandler(MotoRequestHandler):  # type: ignore[misc]  # moto is untyped
    """Serves requests one after another on one connection until the client closes it."""

    protocol_version = "HTTP/1.1"
    # Headers and body go out in two writes; without this, Nagle holds the body back
    # until the client's delayed ACK of the headers (40 ms per request).
    disable_nagle_algorithm = True

    def run_wsgi(self) -> None:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.close_connection = True  # werkzeug's path reads chunked bodies, then closes
            super().run_wsgi()
            return
        if self.headers.get("Expect", "").lower().strip() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Bad Content-Length")
            self.close_connection = True
            return
        # Read the body whole so the next request line starts right after it.
        body = self.rfile.read(length) if length > 0 else b""
        self.environ = environ = self.make_environ()
        environ["wsgi.input"] = io.BytesIO(body)
        try:
            status, headers, chunks = _call(self.server.app, environ)
        except Exception:
            self.server.log("error", f"Error on request:\n{traceback.format_exc()}")
            self.close_connection = True
            status, headers, chunks = _call(InternalServerError(), environ)
        self._respond(status, headers, b"".join(chunks))

    def _respond(self, status: str, headers: list[tuple[str, str]], body: bytes) -> None:
        code_text, _, reason = status.partition(" ")
        code = int(code_text)
        self.send_response(code, reason)
        sends_body = self.command != "HEAD" and code >= 200 and code not in _NO_BODY_CODES
        for key, value in headers:
            lowered = key.lower()
            if lowered in ("connection", "transfer-encoding"):
                continue
            if lowered == "content-length" and sends_body:
                continue  # replaced by the length actually sent
            self.send_header(key, value)
        if sends_body:
            self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if sends_body and body:
            self.wfile.write(body)

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        # werkzeug formats the line before its logger drops it; the stand-in logs at WARNING.
        if _werkzeug_log.isEnabledFor(logging.INFO):
            super().log_request(code, size)


def _call(
    app: Callable[..., Iterable[bytes]], environ: dict[str, Any]
) -> tuple[Any, Any, list[bytes]]:
    """Run a WSGI app to completion: (status, headers, body chunks)."""
    answer: dict[str, Any] = {}
    chunks: list[bytes] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:  # noqa: ARG001 - WSGI's signature
        answer["status"], answer["headers"] = status, headers
        return chunks.append

    result = app(environ, start_response)
    try:
        chunks.extend(result)
    finally:
        close = getattr(result, "close", None)
        if close is not None:
            close()
    return answer["status"], answer["headers"], chunks


class _Server(ThreadedWSGIServer):  # type: ignore[misc]  # werkzeug is not followed
    """werkzeug's threaded server, knowing its open connections so it can end them."""

    def __init__(self, host: str, port: int, app: Any) -> None:
        super().__init__(host, port, app, handler=_KeepAliveHandler)
        self._connections: set[socket.socket] = set()
        self._connections_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._connections_lock:
            self._connections.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._connections_lock:
            self._connections.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every open connection; their threads see EOF and finish."""
        with self._connections_lock:
            connections = list(self._connections)
        for connection in connections:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)


class KeepAliveMotoServer:
    """moto in server mode in a background thread, as `ThreadedMotoServer`, with keep-alive."""

    def __init__(self, *, host: str, port: int) -> None:
        self._host = host
        self._port = port
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        self._services: dict[str, WsgiApp] = {}

    def serve(self, signing_name: str, app: WsgiApp | None) -> None:
        """Answer requests SigV4-signed for `signing_name` with `app` (None: stop)."""
        if app is None:
            self._services.pop(signing_name, None)
        else:
            self._services[signing_name] = app

    def start(self) -> None:
        """Listen and serve in a daemon thread."""
        self._server = _Server(self._host, self._port, _Dispatcher(self._services))
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="sim.aws.moto", daemon=True
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop listening and end open connections."""
        assert self._server is not None, "start() first"
        self._server.shutdown()
        if self._thread is not None:
            self._thread.join()
        self._server.server_close()
        self._server.close_connections()

    def get_host_and_port(self) -> tuple[str, int]:
        """Where the server listens."""
        assert self._server is not None, "start() first"
        host, port = self._server.server_address[:2]
        return str(host), int(port)
