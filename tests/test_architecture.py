"""The layering and purity contracts in .importlinter hold, and they have teeth.

This one test replaces a per-module "imports no Django" check: the purity contract names
every pure module, and a copy of the tree with one bad import must fail it.
"""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")
PACKAGES = ("config", "web", "campaigns", "experiments", "segments", "customers", "core")


def lint(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run([str(LINT), "--no-cache", "--config", str(root / ".importlinter")], cwd=root,
                          capture_output=True, text=True, env={"PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"})


def copy_tree(tmp_path: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(REPO / name, tmp_path / name, ignore=shutil.ignore_patterns("*.pyc", "__pycache__", "templates", "static"))
    shutil.copy(REPO / ".importlinter", tmp_path / ".importlinter")
    return tmp_path


def test_contracts_are_kept():
    result = lint(REPO)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module, line, broken", [
    ("customers/models.py", "import campaigns.models", "Apps import downwards only"),
    ("core/roles.py", "from customers import models", "Apps import downwards only"),
    ("segments/rules.py", "import django.db", "Pure computation imports no Django"),
    ("experiments/stats/means.py", "from rest_framework import serializers", "Pure computation imports no Django"),
])
def test_a_forbidden_import_breaks_a_contract(tmp_path, module, line, broken):
    root = copy_tree(tmp_path)
    path = root / module
    path.write_text(path.read_text() + f"\n{line}\n")
    result = lint(root)
    assert result.returncode != 0
    assert f"{broken}" in result.stdout and "BROKEN" in result.stdout, result.stdout
