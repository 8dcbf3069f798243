"""/healthz: is the database reachable, is the broker reachable. For load balancers and 3 a.m."""

from django.conf import settings
from django.db import connection
from django.http import JsonResponse
from kombu import Connection


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
    db_ok, db_detail = _database()
    broker_ok, broker_detail = _broker()
    ok = db_ok and broker_ok
    return JsonResponse(
        {
            "status": "ok" if ok else "error",
            "database": {"ok": db_ok, "detail": db_detail},
            "broker": {"ok": broker_ok, "detail": broker_detail},
        },
        status=200 if ok else 503,
    )
