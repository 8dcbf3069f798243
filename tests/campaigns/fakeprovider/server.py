"""The fake provider's HTTP server: plumbing, a route table, and the control endpoints."""

from __future__ import annotations

import argparse
import json
import re
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from . import mailgun, postmark, ses
from .state import Faults, FakeProvider, Received

# fn(handler, match, query, body); the provider modules declare their own.
Route = tuple[str, str, Callable]


def _summary(handler, match, query, body):
    handler._reply(200, handler.fake.summary())


def _per_recipient(handler, match, query, body):
    handler._reply(200, handler.fake.per_recipient())


def _faults(handler, match, query, body):
    handler.fake.faults.update(json.loads(body or b"{}"))
    handler._reply(200, {"ok": True})


def _reset(handler, match, query, body):
    handler.fake.reset()
    handler.fake.faults = Faults()
    handler._reply(200, {"ok": True})


CONTROL_ROUTES: list[Route] = [
    ("GET", r"/_fake/summary", _summary),
    ("GET", r"/_fake/per_recipient", _per_recipient),
    ("POST", r"/_fake/faults", _faults),
    ("POST", r"/_fake/reset", _reset),
]


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    fake: FakeProvider = None  # set per server
    routes: list[Route] = []  # set per server

    def log_message(self, format, *args):  # quiet
        pass

    # -- plumbing the provider modules use
    def _body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(self, status: int, body, headers: dict | None = None) -> None:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, str(v))
        self.end_headers()
        self.wfile.write(data)

    def _count(self, outcome: str) -> None:
        with self.fake.lock:
            self.fake.requests += 1
            self.fake.outcomes[outcome] += 1

    def _fault_before(self, refuse: Callable[[str], None] | None = None) -> str | None:
        """Faults that refuse the request before anything is accepted; returns the fault.
        `refuse(fault)` answers in the provider's own words (default: Postmark's)."""
        fault = self.fake.next_fault()
        if fault in ("429", "503"):
            self._count(fault)
            if refuse is not None:
                refuse(fault)
            elif fault == "429":
                self._reply(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"},
                            {"Retry-After": self.fake.faults.retry_after})
            else:
                self._reply(503, {"ErrorCode": 503, "Message": "Service unavailable"})
        return fault

    def _fault_after(self, fault: str | None, ok_status: int, ok_body) -> None:
        """The messages are accepted already; answer, or fail ambiguously."""
        if fault == "500":
            self._count("500")
            self._reply(500, {"ErrorCode": 500, "Message": "Internal server error"})
        elif fault == "hang":
            self._count("hang")
            time.sleep(self.fake.faults.hang_seconds)
            try:
                self._reply(ok_status, ok_body)
            except OSError:
                pass  # the client gave up long ago
        else:
            self._count("ok")
            self._reply(ok_status, ok_body)

    # -- dispatch
    def _dispatch(self, method: str) -> None:
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        body = self._body() if method == "POST" else b""
        for route_method, pattern, fn in self.routes:
            match = re.fullmatch(pattern, parts.path)
            if route_method == method and match:
                return fn(self, match, query, body)
        self._reply(404, {"Message": "not found"})

    def do_GET(self):
        self._dispatch("GET")

    def do_POST(self):
        self._dispatch("POST")


class FakeProviderServer:
    """`with FakeProviderServer() as fake:` serves on 127.0.0.1:<fake.port> in a thread."""

    def __init__(self, port: int = 0, **kwargs):
        self.state = FakeProvider(**kwargs)
        routes = [*CONTROL_ROUTES, *postmark.ROUTES, *mailgun.ROUTES, *ses.ROUTES]
        self.handler = type("BoundHandler", (Handler,), {"fake": self.state, "routes": routes})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), self.handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

    def route(self, method: str, pattern: str, fn: Callable) -> None:
        """Teach the server one more endpoint: fn(handler, match, query, body)."""
        self.handler.routes.insert(0, (method, pattern, fn))

    # Shortcuts to the shared state.
    @property
    def faults(self) -> Faults:
        return self.state.faults

    @property
    def received(self) -> list[Received]:
        return self.state.received

    def per_recipient(self) -> dict[str, int]:
        return self.state.per_recipient()

    def summary(self) -> dict:
        return self.state.summary()

    def start(self) -> FakeProviderServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description="a fake Postmark/Mailgun/SES API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-bodies", action="store_true", help="keep only recipients and ids (large runs)")
    args = parser.parse_args()
    server = FakeProviderServer(args.port, keep_bodies=not args.no_bodies)
    print(server.port, flush=True)
    try:
        server.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass
