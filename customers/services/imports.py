"""Import jobs from the web: an upload, its column mapping, and the run on a worker."""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.utils import timezone

from core import parsing
from core.jobs import Track, enqueue
from core.uploads import limit_describe

from ..importers.result import ImportFailed
from ..importers.run import import_file
from ..models import ImportJob

logger = logging.getLogger(__name__)

IMPORT_TASK = "customers.tasks.import_job_run"
DRAFT_DAYS = 1


def upload_limit() -> int:
    """The largest file the import page takes, in bytes (IMPORT_MAX_UPLOAD_MB)."""
    return settings.IMPORT_MAX_UPLOAD_MB * 1024 * 1024


def upload_too_large_message(name: str) -> str:
    return (f"{name} is larger than the {limit_describe(upload_limit())} an upload may be: "
            "split it into smaller files (each keeps its header line).")


def import_job_upload(kind: str, upload, *, user=None) -> ImportJob:
    """Keep an uploaded file under var/uploads and read its header for the mapping step.

    The file is removed when its import ends, done or failed; drafts never started are
    removed after a day (looked for here, at the next upload).
    """
    if upload.size > upload_limit():
        raise ImportFailed(upload_too_large_message(upload.name))
    import_drafts_expire()
    folder = _uploads_dir()
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


def import_drafts_expire() -> int:
    """Drafts (uploaded, never started) older than DRAFT_DAYS: their files go, the job fails."""
    stale = ImportJob.objects.filter(
        status=ImportJob.Status.DRAFT, created_at__lt=timezone.now() - timedelta(days=DRAFT_DAYS)
    )
    count = 0
    for job in stale:
        claimed = ImportJob.objects.filter(id=job.id, status=ImportJob.Status.DRAFT).update(
            status=ImportJob.Status.FAILED, finished_at=timezone.now(),
            error=f"never started: the uploaded file was removed after {DRAFT_DAYS} day(s); upload it again",
        )
        if claimed:
            _upload_remove(job)
            count += 1
    return count


def _uploads_dir() -> Path:
    return settings.VAR_DIR / "uploads"


def _upload_remove(job: ImportJob) -> None:
    """Delete a job's uploaded file; only ever a file under var/uploads."""
    path = Path(job.path)
    if path.resolve().is_relative_to(_uploads_dir().resolve()):
        path.unlink(missing_ok=True)


def import_job_start(job: ImportJob, *, mapping: dict[str, str], id_from_row: bool = False) -> ImportJob:
    """Queue a mapped upload. Only a draft can start, so a double submit queues it once."""
    options = {**job.options, "mapping": mapping, "id_from_row": id_from_row}
    started = ImportJob.objects.filter(id=job.id, status=ImportJob.Status.DRAFT).update(
        status=ImportJob.Status.QUEUED, options=options
    )
    if started:
        # Tracked as a core Job too: its heartbeat tells the page when the worker running
        # the import vanished, which the ImportJob row alone cannot.
        enqueue(IMPORT_TASK, job.id, track=Track("import", f"Import {job.options.get('filename') or 'file'}",
                                                 target=import_target(job.id), user=job.created_by))
    job.refresh_from_db()
    return job


def import_target(job_id: int) -> str:
    """The core Job target of an import's page."""
    return f"customers.import:{job_id}"


def import_job_progress(job: ImportJob) -> dict:
    """How far a running import has read its file: {"done": bytes, "total": bytes}."""
    return cache.get(_progress_key(job.id)) or {"done": 0, "total": 0}


def _progress_key(job_id: int) -> str:
    return f"import-job:{job_id}:progress"


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
    finally:
        # Done or failed, the upload has served: only the rejects file stays to download.
        _upload_remove(job)
    job.finished_at = timezone.now()
    job.save(update_fields=["status", "error", "result", "finished_at"])
    return job
