"""The Celery app: `celery -A config worker` and `celery -A config beat`."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")

# App code queues tasks through core.jobs.enqueue, which publishes once the transaction
# commits, so a worker never reads rows not yet there; DjangoTask gives a task's own
# delay_on_commit() the same rule.
app = Celery("offerlab", task_cls="celery.contrib.django.task:DjangoTask")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
