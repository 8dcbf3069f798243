"""Mailgun: up to 1,000 recipients per call, each with its own rendered content carried in
recipient-variables (anymail's merge_data / merge_metadata / merge_headers).

Throttling: HTTP 429 (with Retry-After). Reconciliation: the events API, accepted events
carrying our batch id in user-variables.
"""

from __future__ import annotations

import json

from anymail.message import AnymailMessage

from .base import FAILED, UNKNOWN, OutgoingMessage, SendResult
from .per_message import AnymailProvider


class MailgunProvider(AnymailProvider):
    name = "mailgun"
    batch_setting = "CAMPAIGN_MAILGUN_BATCH"
    max_batch = 1000

    @property
    def account_key(self) -> str:
        return f"mailgun:{getattr(self.backend, 'sender_domain', '')}"

    def _batch_message(self, messages: list[OutgoingMessage]) -> AnymailMessage:
        first = messages[0]
        mail = AnymailMessage(
            subject="%recipient.subject%",
            body="%recipient.text%",
            from_email=first.from_email,
            to=[m.to for m in messages],
            tags=[first.tag] if first.tag else [],
            metadata={"offerlab_batch": first.metadata.get("offerlab_batch", "")},
        )
        if any(m.html for m in messages):
            mail.attach_alternative("%recipient.html%", "text/html")
        mail.merge_data = {m.to: {"subject": m.subject, "text": m.text or " ", "html": m.html} for m in messages}
        mail.merge_metadata = {m.to: {k: v for k, v in m.metadata.items() if k != "offerlab_batch"} for m in messages}
        mail.merge_headers = {m.to: dict(m.headers) for m in messages}
        return mail

    def send(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        if len(messages) == 1:
            return super().send(messages)
        # Recipient variables are keyed by address: a repeated address goes in a later call.
        seen: set[str] = set()
        now, later = [], []
        for m in messages:
            (later if m.to.lower() in seen else now).append(m)
            seen.add(m.to.lower())
        results = self._send_group(now)
        if later:
            results += self.send(later)
        return results

    def _send_group(self, messages: list[OutgoingMessage]) -> list[SendResult]:
        mail = self._batch_message(messages)
        self.backend.open()
        try:
            self.backend.send_messages([mail])
        except Exception as exc:
            error = self.error_from(exc)
            if error.permanent and len(messages) > 1:
                # Mailgun refuses the whole call for one bad address: send one by one so
                # only that recipient fails.
                return AnymailProvider.send(self, messages)
            return self.all_failed(messages, error)
        statuses = mail.anymail_status.recipients or {}
        results = []
        for m in messages:
            status = statuses.get(m.to)
            if status is not None and status.status in ("sent", "queued"):
                results.append(SendResult.sent(m.key, status.message_id or ""))
            elif status is not None and status.status in ("rejected", "invalid", "failed"):
                results.append(SendResult(m.key, FAILED, error=f"mailgun {status.status} the recipient"))
            else:
                results.append(SendResult(m.key, UNKNOWN, error="no status for this recipient"))
        return results

    def lookup(self, batch: str) -> dict[str, str] | None:
        self.backend.open()
        url = f"{self.backend.api_url}{self.backend.sender_domain}/events"
        params = {"event": "accepted", "user-variables": json.dumps({"offerlab_batch": batch}), "limit": 300}
        found: dict[str, str] = {}
        for _ in range(20):
            response = self.backend.session.get(url, params=params, auth=("api", self.backend.api_key), timeout=self.timeout)
            if response.status_code != 200:
                return None
            body = response.json()
            items = body.get("items", [])
            for item in items:
                variables = item.get("user-variables") or {}
                if variables.get("offerlab_id"):
                    found[variables["offerlab_id"]] = (item.get("message") or {}).get("headers", {}).get("message-id", "")
            next_url = (body.get("paging") or {}).get("next")
            if not items or not next_url:
                break
            url, params = next_url, None
        return found
