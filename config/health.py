"""/healthz: is the database reachable, is the broker reachable. For load balancers and 3 a.m.

Anyone may ask, so an anonymous answer says only "ok" or "unavailable" per check: the
database's vendor, host, port and error text help an attacker map the system. A logged-in
Admin sees the details.
"""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection

from core.roles import ADMIN, has_role


def _database() -> tuple[bool, str]:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
        return True, connection.vendor
    except Exception as exc:  # any failure is an answer here, not a crash
        return False, f"{type(exc).__name__}: {exc}"


def _broker() -> tuple[bool, str]:
    # A fresh connection each time, not the app's pool: a pooled connection can look alive
    # after the broker went away, and a health check must not lie.
    try:
        with Connection(
            settings.CELERY_BROKER_URL,
            transport_options=settings.CELERY_BROKER_TRANSPORT_OPTIONS,
            connect_timeout=2,
        ) as conn:
            conn.ensure_connection(max_retries=1, timeout=2)
            return True, conn.transport.driver_name
    except Exception as exc:
        return False, f"{type(exc).__name__}: {exc}"


def healthz(request):
    checks = {"database": _database(), "broker": _broker()}
    ok = all(check_ok for check_ok, _ in checks.values())
    detailed = has_role(request.user, ADMIN)
    body = {
        name: {"ok": check_ok, "detail": detail if detailed else ("ok" if check_ok else "unavailable")}
        for name, (check_ok, detail) in checks.items()
    }
    return JsonResponse({"status": "ok" if ok else "error", **body}, status=200 if ok else 503)
