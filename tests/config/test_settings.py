"""Start-up reads the environment as DESIGN.md's contract says."""

import os
import subprocess
import sys

from tests.conftest import REPO


def settings_in_child(**env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "DEBUG", "DATABASE_URL", "EMAIL_PROVIDER")}
    clean.update(env)
    code = (
        "import django, os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'config.settings'); django.setup();"
        "from django.conf import settings as s; print(s.DATABASES['default']['ENGINE'], s.EMAIL_BACKEND, s.CELERY_BROKER_URL)"
    )
    return subprocess.run([sys.executable, "-c", code], cwd=REPO, env=clean, capture_output=True, text=True)


def test_missing_secret_key_with_debug_off_stops_start_up_with_a_clear_message(tmp_path):
    result = settings_in_child(DEBUG="false", OFFERLAB_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr


def test_defaults_are_sqlite_outbox_and_an_embedded_broker():
    result = settings_in_child(SECRET_KEY="x", CELERY_BROKER_URL="")
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["django.db.backends.sqlite3", "campaigns.outbox.OutboxBackend", "filesystem://localhost/"]


def test_database_url_and_provider_come_from_the_environment():
    result = settings_in_child(
        SECRET_KEY="x", DATABASE_URL="postgres://u@127.0.0.1:5432/x", EMAIL_PROVIDER="postmark",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/0",
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [
        "django.db.backends.postgresql", "anymail.backends.postmark.EmailBackend", "redis://127.0.0.1:6379/0",
    ]


def test_an_unknown_provider_is_refused_by_name():
    result = settings_in_child(SECRET_KEY="x", EMAIL_PROVIDER="pigeon")
    assert result.returncode != 0 and "EMAIL_PROVIDER='pigeon'" in result.stderr
