"""Production settings from the environment: `check --deploy` is clean, commands find the key."""

import os
import subprocess
import sys

from tests.conftest import REPO

PRODUCTION = {
    "DEBUG": "false",
    "SECRET_KEY": "k" * 20 + "-production-like-secret-key-with-enough-entropy-9f8e7d6c5b4a",
    "ALLOWED_HOSTS": "offers.example.com",
    "SITE_URL": "https://offers.example.com",
    "SECURE_SSL_REDIRECT": "true",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true",
    "SECURE_HSTS_PRELOAD": "true",
}


def manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    # (the browser tests set DJANGO_ALLOW_ASYNC_UNSAFE for Playwright; no deployment has it)
    dropped = ("SECRET_KEY", "DEBUG", "SITE_URL", "ALLOWED_HOSTS", "DJANGO_ALLOW_ASYNC_UNSAFE")
    clean = {k: v for k, v in os.environ.items() if k not in dropped}
    clean.update(env)
    return subprocess.run([sys.executable, "manage.py", *args], cwd=REPO, env=clean, capture_output=True, text=True)


def test_check_deploy_is_clean_with_the_production_variables_of_the_readme():
    result = manage("check", "--deploy", "--fail-level", "WARNING", **PRODUCTION)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "no issues" in result.stdout


def test_a_command_in_a_new_shell_reads_the_key_make_run_wrote(tmp_path):
    (tmp_path / "secret_key").write_text("a-key-of-this-machine-written-by-make-run\n")
    result = manage("check", DEBUG="false", OFFERLAB_VAR_DIR=str(tmp_path))
    assert result.returncode == 0, result.stderr


def test_without_key_or_key_file_start_up_still_stops_and_says_why(tmp_path):
    result = manage("check", DEBUG="false", OFFERLAB_VAR_DIR=str(tmp_path))
    assert result.returncode != 0
    assert "SECRET_KEY is not set" in result.stderr
