"""Postmark's batch endpoint: up to 500 different messages per call, answered in order.

Throttling: an HTTP 429 for the whole call, or ErrorCode 429 for one message inside a
200 batch answer. Reconciliation: the outbound message search by our batch id.
"""

from __future__ import annotations

import hashlib
import json

import requests

from .base import UNKNOWN, OutgoingMessage, SendResult, TransportError
from .errors import error_from_http
from .per_message import AnymailProvider

THROTTLED_CODE = 429


class PostmarkProvider(AnymailProvider):
    name = "postmark"
    batch_setting = "CAMPAIGN_POSTMARK_BATCH"
    max_batch = 500

    @property
    def account_key(self) -> str:
        token = getattr(self.backend, "server_token", "") or ""
        return f"postmark:{hashlib.sha256(token.encode()).hexdigest()[:12]}"

    def postmark_json(self, message: OutgoingMessage) -> dict:
        data = {"From": message.from_email, "To": message.to, "Subject": message.subject, "TextBody": message.text or " "}
        if message.html:
            data["HtmlBody"] = message.html
        if message.headers:
            data["Headers"] = [{"Name": k, "Value": v} for k, v in message.headers.items()]
        if message.metadata:
            data["Metadata"] = message.metadata
        if message.tag:
            data["Tag"] = message.tag
        if self.backend.message_stream is not None:
            data["MessageStream"] = self.backend.message_stream
        return data

    def _request(self, method: str, path: str, **kwargs) -> requests.Response:
        self.backend.open()
        headers = {
            "Accept": "application/json",
            "Content-Type": "application/json",
            "X-Postmark-Server-Token": self.backend.server_token,
        }
        return self.backend.session.request(
            method, self.backend.api_url + path, headers=headers, timeout=self.timeout, **kwargs
        )

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        # Postmark's message JSON, the fields anymail's Postmark payload sets for the same
        # message (a test holds the two equal). Built here because anymail's payload class
        # parses every address with the email package: ~0.5 ms a message, more than the
        # whole batch call costs per message.
        payloads = [self.postmark_json(m) for m in messages]
        try:
            response = self._request("POST", "email/batch", data=json.dumps(payloads))
        except Exception as exc:
            return self.all_failed(messages, self.error_from(exc))
        if response.status_code != 200:
            return self.all_failed(
                messages, error_from_http(response.status_code, response.text, response.headers.get("Retry-After"))
            )
        try:
            answers = response.json()
            assert isinstance(answers, list) and len(answers) == len(messages)
        except (ValueError, AssertionError):
            # Accepted, but we cannot tell which: reconcile rather than resend.
            reason = f"unreadable batch answer: {response.text[:200]}"
            return [SendResult(m.key, UNKNOWN, error=reason) for m in messages]
        return [self._answer(message, answer) for message, answer in zip(messages, answers)]

    @staticmethod
    def _answer(message: OutgoingMessage, answer: dict) -> SendResult:
        code = answer.get("ErrorCode", 0)
        if code == 0 and answer.get("MessageID"):
            return SendResult.sent(message.key, answer["MessageID"])
        reason = f"Postmark {code}: {answer.get('Message', '')}"
        throttled = code == THROTTLED_CODE
        return SendResult.failed(message.key, TransportError(reason, throttled=throttled, permanent=not throttled))

    def lookup(self, batch: str) -> dict[str, str] | None:
        """Postmark's outbound message search, filtered by our batch id in the metadata."""
        found: dict[str, str] = {}
        offset = 0
        while True:
            response = self._request(
                "GET", "messages/outbound",
                params={"count": 500, "offset": offset, "metadata_offerlab_batch": batch},
            )
            if response.status_code != 200:
                return None
            body = response.json()
            for item in body.get("Messages", []):
                key = (item.get("Metadata") or {}).get("offerlab_id")
                if key:
                    found[key] = item.get("MessageID", "")
            offset += 500
            if offset >= body.get("TotalCount", 0) or offset >= 10_000:
                return found
