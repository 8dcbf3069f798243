"""A fake email provider: a real HTTP server on 127.0.0.1 that anymail and boto3 talk to
through POSTMARK_API_URL / MAILGUN_API_URL / the SES endpoint URL, with faults to inject
and a record of what it accepted.

Speaks (one module each):
- postmark.py: POST /email, POST /email/batch, GET /messages/outbound (search by metadata_*)
- mailgun.py: POST /v3/<domain>/messages (recipient-variables batches, %recipient.x%
  substituted per recipient), GET /v3/<domain>/events (accepted events by user-variables)
- ses.py: POST /v2/email/outbound-emails (SES v2 SendEmail, raw MIME)
- control (server.py): GET /_fake/summary, GET /_fake/per_recipient, POST /_fake/faults,
  POST /_fake/reset (for a server run in another process:
  `python -m tests.campaigns.fakeprovider --port N`)

A test of a new provider teaches the server its API with `server.route(method, pattern, fn)`.

Faults (state.py), counted over send requests (deterministic: every n-th request):
- every_429 (with Retry-After: retry_after; SES: a `Throttling` error), every_503: refused,
  nothing accepted
- every_500: the messages ARE accepted, then a 500 answers (an ambiguous outcome)
- every_hang: the messages are accepted, then the answer waits hang_seconds (past the
  client's timeout)
- reject: addresses refused for good (Postmark 422 / ErrorCode 300, Mailgun 400)
- throttle: addresses Postmark answers with ErrorCode 429 inside a 200 batch answer
"""

from .server import FakeProviderServer, main
from .state import Faults, FakeProvider, Received

__all__ = ["FakeProvider", "FakeProviderServer", "Faults", "Received", "main"]
