"""Postmark's API as the fake server speaks it."""

from __future__ import annotations

import json
import uuid
from dataclasses import asdict

from .state import Received


def _auth(handler) -> bool:
    if handler.fake.token and handler.headers.get("X-Postmark-Server-Token") != handler.fake.token:
        handler._count("401")
        handler._reply(401, {"ErrorCode": 10, "Message": "No Account or Server API tokens were supplied."})
        return False
    return True


def send(handler, match, query, body: bytes) -> None:
    if not _auth(handler):
        return
    batch = match.group(1) is not None
    try:
        payload = json.loads(body)
    except ValueError:
        return handler._reply(422, {"ErrorCode": 402, "Message": "Invalid JSON"})
    messages = payload if batch else [payload]
    if batch and len(messages) > 500:
        return handler._reply(422, {"ErrorCode": 300, "Message": "Batch too large: at most 500 messages."})
    fault = handler._fault_before()
    if fault in ("429", "503"):
        return
    faults = handler.fake.faults
    answers, accepted = [], []
    for message in messages:
        to = str(message.get("To", ""))
        address = to.split("<")[-1].rstrip(">").strip().lower()
        if address in faults.reject:
            answers.append({"ErrorCode": 300, "Message": f"Invalid 'To' address: '{address}'."})
            continue
        if address in faults.throttle:
            answers.append({"ErrorCode": 429, "Message": "Rate limit exceeded for this message."})
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
    handler.fake.accept(accepted)
    if batch:
        return handler._fault_after(fault, 200, answers)
    answer = answers[0]
    return handler._fault_after(fault, 200 if answer["ErrorCode"] == 0 else 422, answer)


def search(handler, match, query, body) -> None:
    if not _auth(handler):
        return
    wanted = {k[len("metadata_"):]: v for k, v in query.items() if k.startswith("metadata_")}
    fake = handler.fake
    with fake.lock:
        if set(wanted) == {"offerlab_batch"}:
            items = list(fake.by_batch.get(wanted["offerlab_batch"], []))
        else:
            items = [r for r in fake.received if all(asdict(r).get(k.replace("offerlab_id", "key")) == v for k, v in wanted.items())]
    offset, count = int(query.get("offset", 0)), min(int(query.get("count", 500)), 500)
    page = items[offset : offset + count]
    handler._count("search")
    handler._reply(200, {
        "TotalCount": len(items),
        "Messages": [
            {"MessageID": r.message_id, "Recipients": [r.to], "Subject": r.subject, "Status": "Sent",
             "Metadata": {"offerlab_id": r.key, "offerlab_batch": r.batch}}
            for r in page
        ],
    })


ROUTES = [
    ("POST", r"/email(/batch)?", send),
    ("GET", r"/messages/outbound", search),
]
