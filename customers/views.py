from pathlib import Path

from django.conf import settings
from django.contrib import messages
from django.http import FileResponse, Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_POST

from core.jobs import JobView, jobs_expire_lost
from core.pagination import keyset_page
from core.roles import MARKETER, VIEWER, has_role, role_required
from core.selectors import jobs_for
from core.uploads import UploadLimit, limit_describe

from .importers.result import ImportFailed
from .importers.specs import SPECS
from .models import ImportJob
from .selectors import customer_list
from .services.imports import (
    import_job_progress,
    import_job_start,
    import_job_upload,
    import_target,
    upload_limit,
    upload_too_large_message,
)


@role_required(VIEWER)
def customer_index(request):
    search = request.GET.get("q", "").strip()
    country = request.GET.get("country", "").strip()
    # By keyset, not Paginator: numbering pages counts every customer (600 ms at 1M) per view.
    page = keyset_page(customer_list(search=search, country=country), after=request.GET.get("after"),
                       before=request.GET.get("before"), size=50)
    return render(request, "customers/index.html", {"page": page, "q": search, "country": country})


# --- Imports ---------------------------------------------------------------------------

IMPORT_KINDS = {"customers": "Customers", "orders": "Orders", "events": "Events"}


@role_required(VIEWER)
def import_index(request):
    jobs = ImportJob.objects.order_by("-created_at")[:30]
    return render(request, "customers/imports.html", {
        "jobs": jobs, "kinds": IMPORT_KINDS, "can_edit": has_role(request.user, MARKETER),
        "upload_limit": limit_describe(upload_limit()),
    })


@csrf_exempt  # checked below, once the size limit is in place: the check reads the body
def import_upload(request):
    request.upload_handlers.insert(0, UploadLimit(request, upload_limit()))
    return _import_upload(request)


@csrf_protect
@role_required(MARKETER)
@require_POST
def _import_upload(request):
    kind = request.POST.get("kind", "")
    upload = request.FILES.get("file")
    if request.upload_too_large:
        messages.error(request, upload_too_large_message(request.upload_too_large))
        return redirect("customers:imports")
    if kind not in IMPORT_KINDS or upload is None:
        messages.error(request, "Choose what the file holds and a CSV file to upload.")
        return redirect("customers:imports")
    try:
        job = import_job_upload(kind, upload, user=request.user)
    except ImportFailed as exc:
        messages.error(request, str(exc))
        return redirect("customers:imports")
    return redirect("customers:import-map", job_id=job.id)


@role_required(MARKETER)
def import_map(request, job_id: int):
    job = get_object_or_404(ImportJob, pk=job_id)
    if job.status != ImportJob.Status.DRAFT:
        return redirect("customers:import-detail", job_id=job.id)
    header = job.options.get("header", [])
    fields = SPECS[job.kind].columns
    if request.method == "POST":
        mapping = {c.name: request.POST[f"map_{c.name}"] for c in fields if request.POST.get(f"map_{c.name}") in header}
        import_job_start(job, mapping=mapping, id_from_row=request.POST.get("id_from_row") == "on")
        return redirect("customers:import-detail", job_id=job.id)
    lower = {h.lower(): h for h in header}
    rows = [
        {"name": c.name, "required": c.required, "guess": lower.get(c.name.lower(), "")}
        for c in fields
    ]
    return render(request, "customers/import_map.html", {"job": job, "rows": rows, "header": header})


@role_required(VIEWER)
def import_detail(request, job_id: int):
    job = get_object_or_404(ImportJob, pk=job_id)
    context = {"job": job, "progress": import_job_progress(job), "state": _import_state(job)}
    template = "customers/_import_status.html" if request.htmx else "customers/import_detail.html"
    return render(request, template, context)


def _import_state(job: ImportJob) -> JobView | None:
    """The import's state for core/_job.html. The ImportJob row says how it went; the core
    Job queued with it says when the worker running it vanished (no heartbeat)."""
    if job.status == ImportJob.Status.DRAFT:
        return None
    state, error = job.status, job.error
    tracked = jobs_for(import_target(job.id))
    if tracked and state in (ImportJob.Status.QUEUED, ImportJob.Status.RUNNING):
        jobs_expire_lost(ids=[tracked[0].id])
        tracked[0].refresh_from_db()
        if tracked[0].state == tracked[0].State.FAILED:
            state, error = ImportJob.Status.FAILED, tracked[0].error
    started = tracked[0].started_at if tracked else None
    return JobView(
        id=f"import-{job.id}", state=state, label=f"Import of {job.options.get('filename') or 'the file'}",
        error=error, created_at=job.created_at, started_at=started or job.created_at, finished_at=job.finished_at,
        retry_link=reverse("customers:imports") if state == ImportJob.Status.FAILED else "",
        retry_link_text="Upload the file again",
    )


@role_required(VIEWER)
def import_rejects(request, job_id: int):
    job = get_object_or_404(ImportJob, pk=job_id)
    path = Path((job.result or {}).get("rejects_path") or "")
    # Only files the importer wrote under var/: a result row can never point elsewhere.
    if not path.name or not path.resolve().is_relative_to(settings.VAR_DIR.resolve()) or not path.is_file():
        raise Http404("This import has no rejected rows.")
    return FileResponse(open(path, "rb"), as_attachment=True, filename=f"import-{job.id}-rejects.csv")
