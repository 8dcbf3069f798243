"""The job status fragment every page polls, and the retry of a failed job."""

from __future__ import annotations

from django.http import Http404
from django.shortcuts import redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from . import selectors
from .jobs import job_retry, jobs_expire_lost
from .models import Job
from .roles import MARKETER, VIEWER, has_role, role_required


def _job(job_id: int) -> Job:
    jobs_expire_lost(ids=[job_id])  # a page polling a lost job learns it here
    try:
        return selectors.job_get(job_id)
    except Job.DoesNotExist:
        raise Http404("No such background job.") from None


@role_required(VIEWER)
def job_status(request, job_id: int):
    """htmx: the status of one job, re-polled by itself while unfinished."""
    job = _job(job_id)
    # The retry form's way back is the page showing the fragment, not this URL.
    back = request.htmx.current_url_abs_path if request.htmx else ""
    return render(request, "core/_job.html",
                  {"job": job, "can_retry": has_role(request.user, MARKETER), "next": back or "/"})


@role_required(MARKETER)
@require_POST
def job_retry_view(request, job_id: int):
    job = job_retry(_job(job_id), user=request.user)
    if request.htmx:
        back = request.htmx.current_url_abs_path or "/"
        return render(request, "core/_job.html", {"job": job, "can_retry": True, "next": back})
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}, require_https=request.is_secure()):
        back = "/"
    return redirect(back)
