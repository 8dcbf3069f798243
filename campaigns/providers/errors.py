"""HTTP answers and exceptions as typed TransportErrors, for every provider that speaks HTTP."""

from __future__ import annotations

import email.utils
from datetime import datetime, timezone as dt_timezone

import requests
from urllib3.exceptions import NewConnectionError

from .base import TransportError


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After is seconds or an HTTP date."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt_timezone.utc)
    return max(0.0, (when - datetime.now(dt_timezone.utc)).total_seconds())


def error_from_http(status: int, body: str, retry_after: str | None) -> TransportError:
    """What an HTTP answer that was not a success means."""
    reason = f"HTTP {status}: {body[:300]}".strip()
    after = retry_after_seconds(retry_after)
    if status == 429:
        return TransportError(reason, throttled=True, retry_after=after)
    if status in (503, 401, 403, 408):
        # 401/403/408: bad credentials or a timeout before processing: nothing was sent,
        # and failing every row for a configuration mistake would lose the campaign.
        return TransportError(reason, retry_after=after)
    if status >= 500:
        return TransportError(reason, maybe_sent=True)  # it may have been accepted before the error
    return TransportError(reason, permanent=True)


def exception_chain(exc: BaseException) -> list[BaseException]:
    """The exception and its causes: anymail wraps requests' and boto's errors."""
    chain: list[BaseException] = []
    cause: BaseException | None = exc
    while cause is not None and len(chain) < 8:
        chain.append(cause)
        cause = cause.__cause__ or cause.__context__
    return chain


def first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [""])[0][:300]


def _connection_refused(exc: BaseException) -> bool:
    """True when the request certainly never reached the provider."""
    if isinstance(exc, requests.ConnectTimeout):
        return True
    if isinstance(exc, requests.ConnectionError):
        first = exc.args[0] if exc.args else None
        if isinstance(first, NewConnectionError) or isinstance(getattr(first, "reason", None), NewConnectionError):
            return True
    return isinstance(exc, (NewConnectionError, ConnectionRefusedError))


def error_from_exception(exc: BaseException) -> TransportError:
    """What an exception raised while sending means, most certain answers first."""
    chain = exception_chain(exc)
    for cause in chain:
        response = getattr(cause, "response", None)
        if response is not None and getattr(response, "status_code", None):
            return error_from_http(response.status_code, response.text, response.headers.get("Retry-After"))
    for cause in chain:
        if _connection_refused(cause):
            return TransportError(f"connection failed: {first_line(cause)}")
    for cause in chain:
        if isinstance(cause, requests.Timeout):
            return TransportError(f"timed out waiting for the provider: {first_line(cause)}", maybe_sent=True)
    return TransportError(f"the request may have been sent: {type(exc).__name__}: {first_line(exc)}", maybe_sent=True)
