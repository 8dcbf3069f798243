"""launch_campaign --spec FILE.json and campaign_status NAME --json."""

import json
from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from tests.campaigns.conftest import spec

pytestmark = pytest.mark.django_db



def test_launch_campaign_from_a_spec_file_then_status(segment, tmp_path):
    path = tmp_path / "spring.json"
    path.write_text(json.dumps(spec(name="from-file")))
    out = StringIO()
    call_command("launch_campaign", "--spec", str(path), stdout=out)
    assert "'from-file'" in out.getvalue() and "sending" in out.getvalue()
    out = StringIO()
    call_command("campaign_status", "from-file", "--json", stdout=out)
    status = json.loads(out.getvalue())
    assert status["state"] == "sending"
    assert status["counts"]["pending"] + status["counts"]["held_out"] == 200


def test_a_bad_spec_is_a_clear_error_and_creates_nothing(segment, tmp_path):
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(spec(segment="nope")))
    with pytest.raises(CommandError, match="no segment named or numbered 'nope'"):
        call_command("launch_campaign", "--spec", str(path))
    from campaigns.models import Campaign

    assert not Campaign.objects.exists()


def test_status_of_an_unknown_campaign_is_an_error():
    with pytest.raises(CommandError, match="no campaign"):
        call_command("campaign_status", "nope")
