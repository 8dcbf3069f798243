"""Amazon SES v2 SendEmail (raw MIME) as the fake server speaks it, enough for boto3."""

from __future__ import annotations

import base64
import json
import uuid
from email import message_from_bytes
from email.policy import default as default_policy

from .state import Received


def _refuse(handler, fault: str) -> None:
    # SES signals throttling by its error code, not by an HTTP 429.
    if fault == "429":
        handler._reply(400, {"message": "Maximum sending rate exceeded."}, {"x-amzn-ErrorType": "Throttling"})
    else:
        handler._reply(503, {"message": "Service unavailable"}, {"x-amzn-ErrorType": "ServiceUnavailable"})


def send(handler, match, query, body: bytes) -> None:
    fault = handler._fault_before(lambda f: _refuse(handler, f))
    if fault in ("429", "503"):
        return
    payload = json.loads(body or b"{}")
    raw = base64.b64decode(payload["Content"]["Raw"]["Data"])
    mime = message_from_bytes(raw, policy=default_policy)
    address = str(mime["To"]).split("<")[-1].rstrip(">").strip().lower()
    if address in handler.fake.faults.reject:
        handler._count("400")
        return handler._reply(400, {"message": f"Address rejected: {address}"}, {"x-amzn-ErrorType": "MessageRejected"})
    metadata = json.loads(mime["X-Metadata"] or "{}")
    message_id = str(uuid.uuid4())
    handler.fake.accept([Received(
        to=address, key=metadata.get("offerlab_id", ""), batch=metadata.get("offerlab_batch", ""),
        subject=str(mime["Subject"]), message_id=message_id, provider="ses",
    )])
    handler._fault_after(fault, 200, {"MessageId": message_id})


ROUTES = [("POST", r"/v2/email/outbound-emails", send)]
