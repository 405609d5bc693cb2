"""HTTP plumbing of the fake Scout: a threading stdlib server that hands parsed requests to an
application callable and writes its responses (plain, chunked streams, or a dropped socket).

This module knows nothing about Scout; see :mod:`django_scout.testing.handlers` for that.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import socket
import socketserver
import sys
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from .generators import FLUSH, AbortStream

__all__ = ["FakeHTTPServer", "Request", "Response"]

logger = logging.getLogger("django_scout.testing")

_FLUSH_SIZE = 16 * 1024
_WEBHOOK_TOKEN = re.compile(r"(/webhook/)[^\s/?\"]+")
_HOST_RE = re.compile(r"^[A-Za-z0-9.\-]+(:\d{1,5})?$|^\[[0-9A-Fa-f:.]+\](:\d{1,5})?$")


@dataclass
class Request:
    """A parsed request. ``headers`` has lower-case names; ``base_url`` is the origin the
    client used (from its ``Host`` header), for absolute URLs in answers."""

    method: str
    path: str
    query: Mapping[str, list[str]]
    headers: Mapping[str, str]
    body: bytes
    base_url: str

    def query_value(self, name: str) -> str | None:
        """The first value of a query parameter, or ``None``."""
        values = self.query.get(name)
        return values[0] if values else None


@dataclass
class Response:
    """An answer. ``body`` is bytes, or an iterator of pieces streamed with chunked encoding
    (``b""`` flushes; :class:`AbortStream` closes the socket mid-body). ``drop`` closes the
    connection without answering at all."""

    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    drop: bool = False

    @classmethod
    def json(cls, status: int, data: Any, headers: Mapping[str, str] | None = None) -> Response:
        """A JSON answer."""
        return cls(
            status=status,
            body=json.dumps(data).encode("utf-8"),
            headers={"Content-Type": "application/json", **(headers or {})},
        )

    @classmethod
    def stream(cls, content_type: str, body: Iterator[bytes], status: int = 200) -> Response:
        """A streamed answer."""
        return cls(status=status, body=body, headers={"Content-Type": content_type})

    @classmethod
    def dropped(cls) -> Response:
        """Close the connection without any answer."""
        return cls(status=0, drop=True)


App = Callable[[Request], Response]


class _Handler(BaseHTTPRequestHandler):
    """Parses one request, asks the server's app, writes the answer."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server: FakeHTTPServer

    def do_GET(self) -> None:
        """Handle GET."""
        self._serve()

    def do_POST(self) -> None:
        """Handle POST."""
        self._serve()

    def do_PUT(self) -> None:
        """Handle PUT."""
        self._serve()

    def do_PATCH(self) -> None:
        """Handle PATCH."""
        self._serve()

    def do_DELETE(self) -> None:
        """Handle DELETE."""
        self._serve()

    def log_message(self, format: str, *args: Any) -> None:
        """Log through :mod:`logging` instead of stderr, with webhook tokens masked."""
        message = format % args
        logger.debug(
            "fake Scout %s: %s", self.address_string(), _WEBHOOK_TOKEN.sub(r"\1***", message)
        )

    # ------------------------------------------------------------------ reading

    def _read_body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            chunks: list[bytes] = []
            while True:
                size_line = self.rfile.readline(1024)
                size = int(size_line.split(b";", 1)[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline(1024) not in (b"\r\n", b"\n", b""):
                        pass
                    return b"".join(chunks)
                chunks.append(self.rfile.read(size))
                self.rfile.readline(1024)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def _base_url(self) -> str:
        host = self.headers.get("Host", "")
        if host and _HOST_RE.match(host):
            return f"http://{host}"
        return self.server.base_url

    # ------------------------------------------------------------------ writing

    def _serve(self) -> None:
        try:
            body = self._read_body()
        except (ValueError, OSError):
            self.send_error(400, "Bad request body")
            return
        parts = urlsplit(self.path)
        request = Request(
            method=self.command.upper(),
            path=parts.path or "/",
            query=parse_qs(parts.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            base_url=self._base_url(),
        )
        try:
            response = self.server.app(request)
        except Exception as exc:
            logger.exception("fake Scout: crashed while handling %s %s", self.command, self.path)
            response = Response.json(500, {"detail": f"fake Scout crashed: {exc!r}"})
        if response.drop:
            self._drop()
        elif isinstance(response.body, bytes):
            self._write_plain(response, response.body)
        else:
            self._write_stream(response, iter(response.body))

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):
            self.connection.shutdown(socket.SHUT_RDWR)

    def _write_plain(self, response: Response, body: bytes) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _write_stream(self, response: Response, pieces: Iterator[bytes]) -> None:
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Transfer-Encoding", "chunked")
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        self.wfile.flush()
        buffer = bytearray()
        stopping = self.server.stopping
        try:
            for piece in pieces:
                if stopping.is_set():
                    raise AbortStream
                if piece:
                    buffer += piece
                if buffer and (piece == FLUSH or len(buffer) >= _FLUSH_SIZE):
                    self._write_chunk(bytes(buffer))
                    buffer.clear()
            if stopping.is_set():
                raise AbortStream  # the body was cut short by stop(): don't end it cleanly
            if buffer:
                self._write_chunk(bytes(buffer))
            self.wfile.write(b"0\r\n\r\n")
        except AbortStream:
            if buffer:
                self._write_chunk(bytes(buffer))
            self._drop()
        except (BrokenPipeError, ConnectionResetError):
            logger.debug("fake Scout: the client went away mid-stream")
            self.close_connection = True
        finally:
            close = getattr(pieces, "close", None)
            if close is not None:
                close()

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))


class FakeHTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose connection threads it can end on :meth:`close_all`.

    Each connection runs in a daemon thread; :meth:`close_all` shuts the open sockets down
    (ending idle keep-alive connections and streams) and joins those threads.
    """

    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, host: str, port: int, app: App, stopping: threading.Event) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.app = app
        self.stopping = stopping
        self._connections: dict[socket.socket, threading.Thread] = {}
        self._connections_lock = threading.Lock()
        super().__init__((host, port), _Handler)

    def server_bind(self) -> None:
        """Bind without the reverse DNS lookup :class:`http.server.HTTPServer` does."""
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    @property
    def base_url(self) -> str:
        """``http://host:port`` of the listening socket."""
        host = self.server_name
        if ":" in host:
            host = f"[{host}]"
        return f"http://{host}:{self.server_port}"

    def process_request(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Handle the connection in a tracked daemon thread."""
        assert isinstance(request, socket.socket)
        thread = threading.Thread(target=self._process, args=(request, client_address), daemon=True)
        thread.name = f"fake-scout-conn-{thread.name}"
        with self._connections_lock:
            self._connections[request] = thread
        thread.start()

    def _process(self, request: socket.socket, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            self.handle_error(request, client_address)
        finally:
            self.shutdown_request(request)
            with self._connections_lock:
                self._connections.pop(request, None)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: Any
    ) -> None:
        """Log connection errors quietly, anything else with its traceback."""
        error = sys.exc_info()[1]
        if self.stopping.is_set() or isinstance(error, (ConnectionError, TimeoutError)):
            logger.debug("fake Scout: connection from %s ended: %r", client_address, error)
            return
        logger.error("fake Scout: error while handling %s", client_address, exc_info=True)

    def close_all(self, timeout: float = 5.0) -> bool:
        """Shut every open connection down and join their threads; ``False`` on timeout."""
        self.stopping.set()
        with self._connections_lock:
            connections = dict(self._connections)
        for sock in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        ok = True
        for thread in connections.values():
            thread.join(timeout)
            ok = ok and not thread.is_alive()
        return ok
