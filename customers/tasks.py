"""Celery entry points of the customer base: take ids, call a service."""

from celery import shared_task

from .services.imports import import_job_run as job_run


@shared_task
def import_job_run(job_id: int) -> None:
    job_run(job_id)
