"""What core stores: the background jobs a page started, so it can show how they went."""

from django.conf import settings
from django.db import models
from django.urls import reverse


class Job(models.Model):
    """One queued Celery task that someone is watching: queued, running, done or failed.

    `core.jobs.enqueue(..., track=Track(...))` writes it in the caller's transaction and
    publishes the task under the id `job-<pk>`; the worker-side signal handlers in
    core.jobs move it along, so no task has to remember to. A page finds its jobs by
    `target` (a string naming the object the page shows, e.g. "segments.segment:12").
    """

    class State(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    task = models.CharField(max_length=200)
    args = models.JSONField(default=list, blank=True)  # kept so a retry queues the same call
    kwargs = models.JSONField(default=dict, blank=True)
    kind = models.CharField(max_length=40)  # what it does, e.g. "model_train"
    label = models.CharField(max_length=200)  # what a person reads, e.g. "Train k-means clusters"
    target = models.CharField(max_length=200, blank=True, default="")
    state = models.CharField(max_length=8, choices=State.choices, default=State.QUEUED)
    error = models.TextField(blank=True, default="")  # in words, for the person watching
    result = models.JSONField(default=dict, blank=True)  # {"message": ..., "url": ...}
    attempts = models.PositiveIntegerField(default=0)  # times a worker started it
    retry_of = models.ForeignKey("self", null=True, blank=True, on_delete=models.SET_NULL, related_name="retries")
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    heartbeat_at = models.DateTimeField(null=True, blank=True)  # a running worker touches it
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [
            models.Index(fields=["target", "-created_at"], name="job_target"),
            # The stale-job sweep reads only unfinished jobs.
            models.Index(fields=["state"], name="job_unfinished", condition=models.Q(state__in=["queued", "running"])),
        ]

    def __str__(self) -> str:
        return f"{self.label} ({self.state})"

    @property
    def active(self) -> bool:
        return self.state in (self.State.QUEUED, self.State.RUNNING)

    @property
    def poll_url(self) -> str:
        return reverse("core:job", args=[self.pk])

    @property
    def retry_url(self) -> str:
        return reverse("core:job-retry", args=[self.pk]) if self.state == self.State.FAILED else ""
