"""A fake email provider: a real HTTP server on 127.0.0.1 that anymail talks to through
POSTMARK_API_URL / MAILGUN_API_URL, with faults to inject and a record of what it accepted.

Speaks:
- Postmark: POST /email, POST /email/batch, GET /messages/outbound (search by metadata_*)
- Mailgun: POST /v3/<domain>/messages (recipient-variables batches, %recipient.x% substituted
  per recipient), GET /v3/<domain>/events (accepted events by user-variables)
- control: GET /_fake/summary, GET /_fake/per_recipient, POST /_fake/faults, POST /_fake/reset (for a server run in
  another process: `python -m tests.campaigns.fakeprovider --port N`)

Faults, counted over send requests (deterministic: every n-th request):
- every_429 (with Retry-After: retry_after), every_503: refused, nothing accepted
- every_500: the messages ARE accepted, then a 500 answers (an ambiguous outcome)
- every_hang: the messages are accepted, then the answer waits hang_seconds (past the
  client's timeout)
- reject: addresses refused for good (Postmark 422 / ErrorCode 300, Mailgun 400)
"""

from __future__ import annotations

import argparse
import base64
import json
import re
import threading
import time
import uuid
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit


@dataclass
class Faults:
    every_429: int = 0
    retry_after: float = 1.0
    every_503: int = 0
    every_500: int = 0
    every_hang: int = 0
    hang_seconds: float = 3.0
    reject: set = field(default_factory=set)

    def update(self, values: dict) -> None:
        for key, value in values.items():
            if key == "reject":
                value = {str(v).lower() for v in value}
            setattr(self, key, value)


@dataclass
class Received:
    to: str
    key: str  # offerlab_id from the metadata
    batch: str
    subject: str
    text: str = ""
    html: str = ""
    headers: dict = field(default_factory=dict)
    message_id: str = ""
    provider: str = "postmark"


class FakeProvider:
    """The state shared by the server's threads."""

    def __init__(self, *, token: str = "fake-token", api_key: str = "fake-key", keep_bodies: bool = True):
        self.token, self.api_key, self.keep_bodies = token, api_key, keep_bodies
        self.faults = Faults()
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.received: list[Received] = []
            self.by_batch: dict[str, list[Received]] = defaultdict(list)
            self.requests = 0
            self.send_requests = 0
            self.outcomes: dict[str, int] = defaultdict(int)

    # -- what tests ask
    def per_recipient(self) -> dict[str, int]:
        counts: dict[str, int] = defaultdict(int)
        with self.lock:
            for r in self.received:
                counts[r.to.lower()] += 1
        return dict(counts)

    def summary(self) -> dict:
        with self.lock:
            return {
                "received": len(self.received),
                "recipients": len({r.to.lower() for r in self.received}),
                "requests": self.requests,
                "send_requests": self.send_requests,
                "outcomes": dict(self.outcomes),
            }

    # -- faults
    def next_fault(self) -> str | None:
        with self.lock:
            self.send_requests += 1
            n = self.send_requests
            f = self.faults
        for name, every in (("429", f.every_429), ("503", f.every_503), ("500", f.every_500), ("hang", f.every_hang)):
            if every and n % every == 0:
                return name
        return None

    def accept(self, items: list[Received]) -> None:
        with self.lock:
            for item in items:
                if not self.keep_bodies:
                    item.text = item.html = ""
                    item.headers = {}
                self.received.append(item)
                self.by_batch[item.batch].append(item)


def _recipient_sub(text: str, variables: dict) -> str:
    return re.sub(r"%recipient\.([^%]+)%", lambda m: str(variables.get(m.group(1), "")), text or "")


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: clients reuse their connection
    fake: FakeProvider = None  # set per server

    def log_message(self, format, *args):  # quiet
        pass

    # -- plumbing
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

    def _fault_before(self) -> str | None:
        """Faults that refuse the request before anything is accepted; returns the fault."""
        fault = self.fake.next_fault()
        if fault == "429":
            self._count("429")
            self._reply(429, {"ErrorCode": 429, "Message": "Rate limit exceeded"}, {"Retry-After": self.fake.faults.retry_after})
        elif fault == "503":
            self._count("503")
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

    # -- routes
    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        if parts.path == "/_fake/summary":
            return self._reply(200, self.fake.summary())
        if parts.path == "/_fake/per_recipient":
            return self._reply(200, self.fake.per_recipient())
        if parts.path == "/messages/outbound":
            if not self._postmark_auth():
                return
            return self._postmark_search(query)
        match = re.fullmatch(r"/v3/([^/]+)/events", parts.path)
        if match:
            if not self._mailgun_auth():
                return
            return self._mailgun_events(query)
        self._reply(404, {"Message": "not found"})

    def do_POST(self):
        parts = urlsplit(self.path)
        body = self._body()
        if parts.path == "/_fake/faults":
            self.fake.faults.update(json.loads(body or b"{}"))
            return self._reply(200, {"ok": True})
        if parts.path == "/_fake/reset":
            self.fake.reset()
            self.fake.faults = Faults()
            return self._reply(200, {"ok": True})
        if parts.path in ("/email", "/email/batch"):
            if not self._postmark_auth():
                return
            return self._postmark_send(parts.path == "/email/batch", body)
        match = re.fullmatch(r"/v3/([^/]+)/messages", parts.path)
        if match:
            if not self._mailgun_auth():
                return
            return self._mailgun_send(match.group(1), body)
        self._reply(404, {"Message": "not found"})

    # -- Postmark
    def _postmark_auth(self) -> bool:
        if self.fake.token and self.headers.get("X-Postmark-Server-Token") != self.fake.token:
            self._count("401")
            self._reply(401, {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied."})
            return False
        return True

    def _postmark_send(self, batch: bool, body: bytes) -> None:
        try:
            payload = json.loads(body)
        except ValueError:
            return self._reply(422, {"ErrorCode": 402, "Message": "Invalid JSON"})
        messages = payload if batch else [payload]
        if batch and len(messages) > 500:
            return self._reply(422, {"ErrorCode": 300, "Message": "Batch too large: at most 500 messages."})
        fault = self._fault_before()
        if fault in ("429", "503"):
            return
        answers, accepted = [], []
        for message in messages:
            to = str(message.get("To", ""))
            address = to.split("<")[-1].rstrip(">").strip().lower()
            if address in self.fake.faults.reject:
                answers.append({"ErrorCode": 300, "Message": f"Invalid 'To' address: '{address}'."})
                continue
            message_id = str(uuid.uuid4())
            metadata = message.get("Metadata") or {}
            headers = {h["Name"]: h["Value"] for h in message.get("Headers") or []}
            accepted.append(Received(
                to=address, key=metadata.get("offerlab_id", ""), batch=metadata.get("offerlab_batch", ""),
                subject=message.get("Subject", ""), text=message.get("TextBody", ""), html=message.get("HtmlBody", ""),
                headers=headers, message_id=message_id,
            ))
            answers.append({
                "To": to, "SubmittedAt": "2026-01-01T00:00:00Z", "MessageID": message_id, "ErrorCode": 0, "Message": "OK",
            })
        self.fake.accept(accepted)
        if batch:
            return self._fault_after(fault, 200, answers)
        answer = answers[0]
        return self._fault_after(fault, 200 if answer["ErrorCode"] == 0 else 422, answer)

    def _postmark_search(self, query: dict) -> None:
        wanted = {k[len("metadata_"):]: v for k, v in query.items() if k.startswith("metadata_")}
        with self.fake.lock:
            if set(wanted) == {"offerlab_batch"}:
                items = list(self.fake.by_batch.get(wanted["offerlab_batch"], []))
            else:
                items = [r for r in self.fake.received if all(asdict(r).get(k.replace("offerlab_id", "key")) == v for k, v in wanted.items())]
        offset, count = int(query.get("offset", 0)), min(int(query.get("count", 500)), 500)
        page = items[offset : offset + count]
        self._count("search")
        self._reply(200, {
            "TotalCount": len(items),
            "Messages": [
                {"MessageID": r.message_id, "Recipients": [r.to], "Subject": r.subject, "Status": "Sent",
                 "Metadata": {"offerlab_id": r.key, "offerlab_batch": r.batch}}
                for r in page
            ],
        })

    # -- Mailgun
    def _mailgun_auth(self) -> bool:
        expected = "Basic " + base64.b64encode(f"api:{self.fake.api_key}".encode()).decode()
        if self.fake.api_key and self.headers.get("Authorization") != expected:
            self._count("401")
            self._reply(401, b"Forbidden")
            return False
        return True

    def _form(self, body: bytes) -> dict[str, list[str]]:
        kind = self.headers.get("Content-Type", "")
        if kind.startswith("multipart/form-data"):
            message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
            form: dict[str, list[str]] = defaultdict(list)
            for part in message.iter_parts():
                name = part.get_param("name", header="content-disposition")
                form[name].append(part.get_content() if part.get_content_maintype() == "text" else part.get_payload(decode=True).decode())
            return form
        return parse_qs(body.decode(), keep_blank_values=True)

    def _mailgun_send(self, domain: str, body: bytes) -> None:
        form = self._form(body)
        recipients = [t.split("<")[-1].rstrip(">").strip() for t in form.get("to", [])]
        bad = [r for r in recipients if r.lower() in self.fake.faults.reject]
        if bad:
            self._count("400")
            return self._reply(400, {"message": f"'to' parameter is not a valid address: {bad[0]}"})
        fault = self._fault_before()
        if fault in ("429", "503"):
            return
        variables = json.loads((form.get("recipient-variables") or ["{}"])[0])
        message_id = f"<{uuid.uuid4()}@{domain}>"
        accepted = []
        for address in recipients:
            own = variables.get(address, {})
            custom = {k[2:]: _recipient_sub(v[0], own) for k, v in form.items() if k.startswith("v:")}
            headers = {k[2:]: _recipient_sub(v[0], own) for k, v in form.items() if k.startswith("h:")}
            accepted.append(Received(
                to=address.lower(), key=custom.get("offerlab_id", ""), batch=custom.get("offerlab_batch", ""),
                subject=_recipient_sub((form.get("subject") or [""])[0], own),
                text=_recipient_sub((form.get("text") or [""])[0], own),
                html=_recipient_sub((form.get("html") or [""])[0], own),
                headers=headers, message_id=message_id, provider="mailgun",
            ))
        self.fake.accept(accepted)
        self._fault_after(fault, 200, {"id": message_id, "message": "Queued. Thank you."})

    def _mailgun_events(self, query: dict) -> None:
        wanted = json.loads(query.get("user-variables") or "{}")
        with self.fake.lock:
            items = [r for r in self.fake.received if r.provider == "mailgun"
                     and all({"offerlab_batch": r.batch, "offerlab_id": r.key}.get(k) == v for k, v in wanted.items())]
        self._count("events")
        self._reply(200, {
            "items": [
                {"event": "accepted", "recipient": r.to, "message": {"headers": {"message-id": r.message_id.strip("<>")}},
                 "user-variables": {"offerlab_id": r.key, "offerlab_batch": r.batch}}
                for r in items
            ],
            "paging": {},
        })


class FakeProviderServer:
    """`with FakeProviderServer() as fake:` serves on 127.0.0.1:<fake.port> in a thread."""

    def __init__(self, port: int = 0, **kwargs):
        self.state = FakeProvider(**kwargs)
        handler = type("BoundHandler", (Handler,), {"fake": self.state})
        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)

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
    parser = argparse.ArgumentParser(description="a fake Postmark/Mailgun API on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--no-bodies", action="store_true", help="keep only recipients and ids (large runs)")
    args = parser.parse_args()
    server = FakeProviderServer(args.port, keep_bodies=not args.no_bodies)
    print(server.port, flush=True)
    try:
        server.httpd.serve_forever(poll_interval=0.2)
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
