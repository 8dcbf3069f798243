"""The management commands, driven as a user would: files in, JSON and text out."""

import csv
import io
import json

import pytest
from django.core.management import CommandError, call_command

from customers.services.demo import demo_load
from tests.conftest import HILLSTROM

from .report_schema import assert_report_schema

pytestmark = pytest.mark.django_db
HILLSTROM_ARGS = ["--name", "hillstrom", "--arm", "segment", "--control", "No E-Mail",
                  "--metric", "conversion:binary", "--metric", "visit:binary", "--metric", "spend:continuous"]


def run(*args) -> str:
    out = io.StringIO()
    call_command(*args, stdout=out)
    return out.getvalue()


@pytest.fixture
def hillstrom():
    if not HILLSTROM.exists():
        pytest.skip(f"shared dataset not found at {HILLSTROM}")
    return json.loads(run("import_experiment", str(HILLSTROM), *HILLSTROM_ARGS, "--json"))


def test_import_experiment_on_hillstrom_reproduces_arm_sizes_and_conversion(hillstrom):
    arms = {a["name"]: a for a in hillstrom["arms"]}
    assert {name: a["n"] for name, a in arms.items()} == {
        "No E-Mail": 21_306, "Mens E-Mail": 21_307, "Womens E-Mail": 21_387}
    conversion = {name: round(a["means"]["conversion"] * 100, 3) for name, a in arms.items()}
    assert conversion == {"No E-Mail": 0.573, "Mens E-Mail": 1.253, "Womens E-Mail": 0.884}
    assert (hillstrom["rows"], hillstrom["imported"], hillstrom["rejected"]) == (64_000, 64_000, 0)
    assert arms["No E-Mail"]["control"] and hillstrom["metrics"][0] == {
        "name": "conversion", "kind": "binary", "primary": True}


def test_experiment_report_json_on_hillstrom_has_the_contract_and_a_holm_verdict(hillstrom):
    body = json.loads(run("experiment_report", "hillstrom", "--json"))
    assert_report_schema(body)
    assert body["units"] == 64_000 and body["srm"]["status"] == "ok"
    assert body["verdict"].startswith("Mens E-Mail raised conversion from 0.57% to 1.25% (+0.68 points, 95% CI")
    assert "significant after Holm correction" in body["verdict"]


def test_experiment_report_breaks_down_by_channel_and_writes_csv(hillstrom, tmp_path):
    text = run("experiment_report", "hillstrom", "--by", "channel", "--csv", str(tmp_path / "r.csv"))
    assert "Breakdown by channel - CAVEAT" in text
    with open(tmp_path / "r.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert {r["segment"] for r in rows} == {"", "Web", "Phone", "Multichannel"}
    assert len(rows) == 3 * 3 * 4  # metrics x arms x (overall + 3 channels)


def test_uplift_train_on_hillstrom_reports_qini_and_every_decile(hillstrom):
    features = ["recency", "history", "mens", "womens", "zip_code", "newbie", "channel"]
    args = ["uplift_train", "hillstrom", "--treatment", "Mens E-Mail", "--outcome", "conversion", "--json"]
    for feature in features:
        args += ["--feature", feature]
    info = json.loads(run(*args))
    assert info["features"] == features and info["treated"] == 21_307 and info["control"] == 21_306
    assert (info["treatment_arm"], info["control_arm"]) == ("Mens E-Mail", "No E-Mail")
    assert len(info["deciles"]) == 10 and sum(d["units"] for d in info["deciles"]) == 42_613
    assert all(isinstance(d["beats_random"], bool) for d in info["deciles"])
    assert info["average_effect"] == pytest.approx(0.0068, abs=0.0001)
    assert isinstance(info["qini_coefficient"], float)
    assert "random targeting" in info["summary"]


def test_text_report_opens_with_a_loud_banner_when_srm_fails(tmp_path):
    lines = ["arm,y"] + ["A,0"] * 500 + ["B,1"] * 650  # planned 50/50: chi-square p ~ 1e-5
    (tmp_path / "skewed.csv").write_text("\n".join(lines) + "\n")
    run("import_experiment", str(tmp_path / "skewed.csv"), "--name", "skewed", "--arm", "arm",
        "--control", "A", "--metric", "y:binary")
    text = run("experiment_report", "skewed")
    assert text.startswith("!!!!") and "SRM CHECK FAILED" in text.splitlines()[1]
    assert "Results are not trustworthy" in text


def test_import_experiment_refuses_a_second_import_under_the_same_name(tmp_path):
    (tmp_path / "t.csv").write_text("arm,y\nA,0\nB,1\n")
    args = ["import_experiment", str(tmp_path / "t.csv"), "--name", "t", "--arm", "arm", "--control", "A",
            "--metric", "y:binary"]
    run(*args)
    with pytest.raises(CommandError, match="refused.*--replace"):
        run(*args)
    assert "replaced" in run(*args, "--replace")


def test_experiment_report_for_an_unknown_experiment_says_so():
    with pytest.raises(CommandError, match="no experiment named"):
        run("experiment_report", "nope")


def test_demo_experiment_builds_demo_spring_from_the_planted_campaign():
    demo_load(600, seed=3)
    result = json.loads(run("demo_experiment", "--json"))
    assert result["experiment"] == "demo-spring"
    assert set(result["arms"]) == {"control", "treatment"} and sum(result["arms"].values()) > 0
