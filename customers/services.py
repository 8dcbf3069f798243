"""Writes to the customer base that are not file imports: demo data, suppression."""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime, timezone as dt_timezone

import numpy as np
from django.conf import settings
from django.core.cache import cache
from django.db import connection, transaction
from django.utils import timezone

from core import parsing
from core.bulk import bulk_copy

from . import demo
from .importers.result import ImportFailed
from .importers.run import import_file
from .models import AttributeDefinition, Customer, Event, ImportJob, Order, Suppression

logger = logging.getLogger(__name__)


def _stamp(seconds: float) -> datetime:
    return datetime.fromtimestamp(float(seconds), tz=dt_timezone.utc)


@transaction.atomic
def demo_load(customers: int = 20_000, seed: int = 7, today: datetime | None = None) -> dict:
    """Replace any earlier demo customers with a fresh synthetic base (see customers/demo.py)."""
    started = time.monotonic()
    today = (today or timezone.now()).replace(hour=0, minute=0, second=0, microsecond=0)
    data = demo.demo_generate(customers, seed, today)
    Customer.objects.filter(external_id__startswith="demo-").delete()
    for name, kind in (("planted_cluster", "integer"), ("discount_user", "boolean"), ("demo_campaign_arm", "text")):
        AttributeDefinition.objects.get_or_create(name=name, defaults={"type": kind})

    c = data.customers
    now = timezone.now()
    names = np.array(["Alex", "Sam", "Robin", "Kim", "Jo", "Lee", "Max", "Ari", "Noa", "Pat"])
    bulk_copy(
        Customer._meta.db_table,
        ["external_id", "email", "name", "country", "time_zone", "signup_date", "attributes", "created_at", "updated_at"],
        (
            (
                c["external_id"][i],
                f"{c['external_id'][i]}@example.com",
                f"{names[i % names.size]} {c['ids'][i]}",
                demo.COUNTRIES[c["country_index"][i]],
                demo.ZONES[c["country_index"][i]],
                _stamp(c["signup"][i]).date(),
                json.dumps(
                    {"planted_cluster": int(c["cluster"][i]), "discount_user": bool(c["discount_user"][i])}
                    | ({"demo_campaign_arm": str(c["arm"][i])} if c["arm"][i] else {})
                ),
                now,
                now,
            )
            for i in range(customers)
        ),
    )
    # Map the generator's 0-based customer index to database ids, in one query.
    ids = dict(Customer.objects.filter(external_id__startswith="demo-").values_list("external_id", "id"))
    db_id = np.array([ids[e] for e in c["external_id"]], dtype=np.int64)

    o = data.orders
    bulk_copy(
        Order._meta.db_table,
        ["external_id", "customer_id", "amount", "currency", "ordered_at", "properties"],
        (
            (
                o["external_id"][i],
                int(db_id[o["customer"][i]]),
                f"{o['amount'][i]:.2f}",
                "USD",
                _stamp(o["ordered_at"][i]),
                json.dumps(
                    ({"discount_code": "SAVE10"} if o["discounted"][i] else {})
                    | ({"campaign": "demo-spring"} if o["campaign"][i] else {})
                ),
            )
            for i in range(o["customer"].size)
        ),
    )
    e = data.events
    bulk_copy(
        Event._meta.db_table,
        ["customer_id", "kind", "occurred_at", "properties"],
        ((int(db_id[e["customer"][i]]), str(e["kind"][i]), _stamp(e["occurred_at"][i]), "{}") for i in range(e["customer"].size)),
    )
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            for model in (Customer, Order, Event):
                cursor.execute(f"ANALYZE {model._meta.db_table}")
    return {
        "customers": customers,
        "orders": int(o["customer"].size),
        "events": int(e["customer"].size),
        "seed": seed,
        "today": today.date().isoformat(),
        "seconds": round(time.monotonic() - started, 2),
    }


def customer_suppress(customer: Customer, reason: str, *, detail: str = "", source: str = "") -> Suppression:
    """Record a reason never to email this customer; the first record of a reason stands."""
    suppression, _ = Suppression.objects.get_or_create(
        customer=customer, reason=reason, defaults={"detail": detail[:500], "source": source}
    )
    return suppression


def import_job_upload(kind: str, upload, *, user=None) -> ImportJob:
    """Keep an uploaded file under var/uploads and read its header for the mapping step."""
    folder = settings.VAR_DIR / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}.csv"
    with open(path, "wb") as out:
        for chunk in upload.chunks():
            out.write(chunk)
    try:
        source = parsing.open_csv(path)
        try:
            header, _ = parsing.read_records(source.stream, source.delimiter)
        finally:
            source.raw.close()
    except parsing.FileError as exc:
        path.unlink(missing_ok=True)
        raise ImportFailed(f"{upload.name}: {exc}") from None
    return ImportJob.objects.create(
        kind=kind, path=str(path), status=ImportJob.Status.DRAFT, created_by=user,
        options={"header": header, "filename": upload.name},
    )


def import_job_start(job: ImportJob, *, mapping: dict[str, str], id_from_row: bool = False) -> ImportJob:
    """Queue a mapped upload. Only a draft can start, so a double submit queues it once."""
    options = {**job.options, "mapping": mapping, "id_from_row": id_from_row}
    started = ImportJob.objects.filter(id=job.id, status=ImportJob.Status.DRAFT).update(
        status=ImportJob.Status.QUEUED, options=options
    )
    if started:
        from .tasks import import_job_run as task

        transaction.on_commit(lambda: task.delay(job.id))
    job.refresh_from_db()
    return job


def import_job_progress(job: ImportJob) -> dict:
    """How far a running import has read its file: {"done": bytes, "total": bytes}."""
    return cache.get(_progress_key(job.id)) or {"done": 0, "total": 0}


def _progress_key(job_id: int) -> str:
    return f"import-job:{job_id}:progress"


def import_job_create(kind: str, path: str, *, options: dict | None = None, user=None) -> ImportJob:
    """Queue a file import; the worker runs it once the row is committed."""
    from .tasks import import_job_run

    job = ImportJob.objects.create(kind=kind, path=str(path), options=options or {}, created_by=user)
    import_job_run.delay_on_commit(job.id)
    return job


def import_job_run(job_id: int) -> ImportJob | None:
    """Run a queued import. Claiming it with a conditional update means a redelivered
    message, or a second worker, finds nothing to do instead of importing twice."""
    claimed = ImportJob.objects.filter(id=job_id, status=ImportJob.Status.QUEUED).update(
        status=ImportJob.Status.RUNNING
    )
    if not claimed:
        return None
    job = ImportJob.objects.get(id=job_id)
    options = {k: v for k, v in job.options.items() if k not in ("header", "filename")}
    options.setdefault("rejects_path", settings.VAR_DIR / "rejects" / f"import-{job.id}.rejects.csv")

    def progress(done: int, total: int) -> None:
        # The cache, not the job row: the import runs in one transaction, and a row
        # written inside it would stay invisible to the page until the very end.
        cache.set(_progress_key(job_id), {"done": done, "total": total}, timeout=3600)

    try:
        result = import_file(job.kind, job.path, on_progress=progress, **options)
    except ImportFailed as exc:
        job.status, job.error = ImportJob.Status.FAILED, str(exc)
    except Exception as exc:
        # Never leave a job "running" forever: the person watching it must see it failed.
        logger.exception("import job %s failed", job_id)
        job.status, job.error = ImportJob.Status.FAILED, f"internal error: {type(exc).__name__}: {exc}"
    else:
        job.status, job.result = ImportJob.Status.DONE, result.as_dict()
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "result", "finished_at"])
    return job
