"""Amazon SES through anymail's boto3 backend: one SendEmail call per message.

Throttling: boto3's ClientError codes (`Throttling`, `TooManyRequestsException`, ...), never
an HTTP status we could see. boto3 is told not to retry on its own: a throttle it slept
through inside one worker would never reach the rate limit every worker shares.
Reconciliation: none (SES cannot be asked by batch): unknown rows wait for a webhook.
"""

from __future__ import annotations

from botocore import exceptions as boto
from django.conf import settings

from .base import TransportError
from .errors import exception_chain, first_line
from .per_message import AnymailProvider

THROTTLE_CODES = {"Throttling", "ThrottlingException", "TooManyRequestsException"}


def error_from_boto(exc: BaseException) -> TransportError | None:
    """What a botocore error means; None for anything else."""
    if isinstance(exc, (boto.EndpointConnectionError, boto.ConnectTimeoutError)):
        return TransportError(f"connection failed: {first_line(exc)}")
    if isinstance(exc, (boto.ReadTimeoutError, boto.ConnectionClosedError)):
        return TransportError(f"timed out waiting for the provider: {first_line(exc)}", maybe_sent=True)
    if isinstance(exc, boto.ClientError):
        code = exc.response.get("Error", {}).get("Code", "")
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 400)
        reason = f"{code}: {first_line(exc)}"
        if code in THROTTLE_CODES or status == 429:
            return TransportError(reason, throttled=True)
        if status == 503:
            return TransportError(reason)
        if status >= 500:
            return TransportError(reason, maybe_sent=True)
        return TransportError(reason, permanent=True)
    return None


class SesProvider(AnymailProvider):
    name = "amazon_ses"
    max_batch = 50

    def backend_options(self) -> dict:
        params = dict((settings.ANYMAIL or {}).get("AMAZON_SES_CLIENT_PARAMS") or {})
        config = dict(params.get("config") or {})
        config.setdefault("retries", {"total_max_attempts": 1})
        config.setdefault("connect_timeout", self.timeout)
        config.setdefault("read_timeout", self.timeout)
        return {"client_params": params | {"config": config}}

    def error_from(self, exc: BaseException) -> TransportError:
        for cause in exception_chain(exc):
            decided = error_from_boto(cause)
            if decided is not None:
                return decided
        return super().error_from(exc)
