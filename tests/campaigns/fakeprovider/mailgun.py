"""Mailgun's API as the fake server speaks it."""

from __future__ import annotations

import base64
import json
import re
import uuid
from collections import defaultdict
from email.parser import BytesParser
from email.policy import HTTP
from urllib.parse import parse_qs

from .state import Received


def _recipient_sub(text: str, variables: dict) -> str:
    return re.sub(r"%recipient\.([^%]+)%", lambda m: str(variables.get(m.group(1), "")), text or "")


def _auth(handler) -> bool:
    expected = "Basic " + base64.b64encode(f"api:{handler.fake.api_key}".encode()).decode()
    if handler.fake.api_key and handler.headers.get("Authorization") != expected:
        handler._count("401")
        handler._reply(401, b"Forbidden")
        return False
    return True


def _form(handler, body: bytes) -> dict[str, list[str]]:
    kind = handler.headers.get("Content-Type", "")
    if kind.startswith("multipart/form-data"):
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {kind}\r\n\r\n".encode() + body)
        form: dict[str, list[str]] = defaultdict(list)
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            form[name].append(part.get_content() if part.get_content_maintype() == "text" else part.get_payload(decode=True).decode())
        return form
    return parse_qs(body.decode(), keep_blank_values=True)


def send(handler, match, query, body: bytes) -> None:
    if not _auth(handler):
        return
    domain = match.group(1)
    form = _form(handler, body)
    recipients = [t.split("<")[-1].rstrip(">").strip() for t in form.get("to", [])]
    bad = [r for r in recipients if r.lower() in handler.fake.faults.reject]
    if bad:
        handler._count("400")
        return handler._reply(400, {"message": f"'to' parameter is not a valid address: {bad[0]}"})
    fault = handler._fault_before()
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
    handler.fake.accept(accepted)
    handler._fault_after(fault, 200, {"id": message_id, "message": "Queued. Thank you."})


def events(handler, match, query, body) -> None:
    if not _auth(handler):
        return
    wanted = json.loads(query.get("user-variables") or "{}")
    fake = handler.fake
    with fake.lock:
        items = [r for r in fake.received if r.provider == "mailgun"
                 and all({"offerlab_batch": r.batch, "offerlab_id": r.key}.get(k) == v for k, v in wanted.items())]
    handler._count("events")
    handler._reply(200, {
        "items": [
            {"event": "accepted", "recipient": r.to, "message": {"headers": {"message-id": r.message_id.strip("<>")}},
             "user-variables": {"offerlab_id": r.key, "offerlab_batch": r.batch}}
            for r in items
        ],
        "paging": {},
    })


ROUTES = [
    ("POST", r"/v3/([^/]+)/messages", send),
    ("GET", r"/v3/([^/]+)/events", events),
]
