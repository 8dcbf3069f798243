"""The report contract from the experiments issue, checked key by key and type by type."""

import json

from experiments.kinds import KINDS

NUMBER = (int, float)


def _interval(value) -> bool:
    return isinstance(value, list) and len(value) == 2 and all(v is None or isinstance(v, NUMBER) for v in value)


def assert_report_schema(body: dict) -> None:
    json.dumps(body, allow_nan=False)  # no NaN or infinity anywhere
    assert isinstance(body["experiment"], str)
    assert isinstance(body["units"], int)
    assert body["mode"] in ("fixed", "sequential")
    assert body["srm"]["status"] in ("ok", "warning", "fail")
    assert body["srm"]["p_value"] is None or isinstance(body["srm"]["p_value"], float)
    assert isinstance(body["verdict"], str) and body["verdict"]
    assert isinstance(body["power"], dict)
    for arm in body["arms"]:
        assert isinstance(arm["name"], str) and isinstance(arm["control"], bool) and isinstance(arm["n"], int)
    assert sum(a["control"] for a in body["arms"]) == 1
    assert sum(m["primary"] for m in body["metrics"]) == 1
    for metric in body["metrics"]:
        assert isinstance(metric["name"], str)
        assert metric["kind"] in KINDS
        assert isinstance(metric["primary"], bool)
        for row in metric["arms"]:
            assert isinstance(row["arm"], str) and isinstance(row["n"], int)
            assert row["mean"] is None or isinstance(row["mean"], NUMBER)
            assert _interval(row["ci"])
        for comp in metric["comparisons"]:
            assert {"arm", "control", "diff", "diff_ci", "lift", "lift_ci", "p_value", "p_adjusted", "test",
                    "significant"} <= set(comp)
            assert isinstance(comp["arm"], str) and isinstance(comp["control"], str)
            assert _interval(comp["diff_ci"]) and _interval(comp["lift_ci"])
            assert comp["p_adjusted"] is None or isinstance(comp["p_adjusted"], float)
            assert isinstance(comp["test"], str) and isinstance(comp["significant"], bool)
