"""A segment payload (the REST body, a page's form, the JSON file of `segment_create`)
checked and turned into model fields, every problem reported with its path."""

from __future__ import annotations

from typing import Any

from core.schedules import ScheduleInvalid, schedule_clean

from .. import rules
from ..fields import is_int, is_number
from ..models import Segment, SegmentModel
from ..selectors import field_registry

MODEL_KINDS = {Segment.Kind.KMEANS, Segment.Kind.RFM, Segment.Kind.PROPENSITY, Segment.Kind.VALUE, Segment.Kind.UPLIFT}
LABEL_KINDS = {Segment.Kind.KMEANS, Segment.Kind.RFM}
SPEC_KEYS = {"name", "description", "kind", "rule", "model", "label", "threshold", "below", "top_fraction",
             "after_fraction", "family", "rank", "worse", "schedule", "refresh", "ties"}
# When "the top X%" ends inside a block of equal scores: refuse to pick among them (the
# default: which of them would be arbitrary), or take every customer tied at the cut.
TIES = ("refuse", "include")


class SpecInvalid(ValueError):
    """A segment payload that cannot be used; `errors` are {path, message}, like a rule's."""

    def __init__(self, errors: list[dict[str, str]]):
        self.errors = errors
        super().__init__("; ".join(f"{e['path']}: {e['message']}" for e in errors))



def segment_spec_clean(spec: Any, *, segment: Segment | None = None) -> dict[str, Any]:
    """Check a segment payload (the REST body, or the JSON file of `segment_create`).

    Returns the fields to store; raises SpecInvalid with every problem and its path.
    """
    errors: list[dict[str, str]] = []

    def fail(path: str, message: str) -> None:
        errors.append({"path": path, "message": message})

    if not isinstance(spec, dict):
        raise SpecInvalid([{"path": "spec", "message": "expected a JSON object"}])
    for key in sorted(set(spec) - SPEC_KEYS):
        fail(key, f"unknown key; a segment takes {', '.join(sorted(SPEC_KEYS))}")
    out: dict[str, Any] = {}
    name = spec.get("name", segment.name if segment else None)
    if not isinstance(name, str) or not name.strip() or len(name) > 200:
        fail("name", "a name of 1 to 200 characters is required")
    else:
        out["name"] = name.strip()
        clash = Segment.objects.filter(name=out["name"])
        if segment is not None:
            clash = clash.exclude(pk=segment.pk)
        if clash.exists():
            fail("name", f"a segment named {out['name']!r} already exists")
    description = spec.get("description", "")
    if not isinstance(description, str):
        fail("description", "expected a text")
    out["description"] = description if isinstance(description, str) else ""
    family = spec.get("family", "")
    if not isinstance(family, str) or len(family) > 200:
        fail("family", "expected a text of at most 200 characters")
    out["family"] = family if isinstance(family, str) else ""
    params: dict[str, Any] = {}
    rank = spec.get("rank")
    if rank is not None:
        if not is_int(rank) or rank < 0:
            fail("rank", "expected a whole number >= 0 (0 is the best segment of its family)")
        params["rank"] = rank
    worse = spec.get("worse")
    if worse is not None:
        if worse not in ("higher", "lower"):
            fail("worse", "expected 'higher' or 'lower' (which scores are worse)")
        params["worse"] = worse

    model: SegmentModel | None = None
    kind = spec.get("kind")
    raw_model = spec.get("model")
    if raw_model is not None:
        if is_int(raw_model):
            model = SegmentModel.objects.filter(pk=raw_model).defer("pipeline").first()
        elif isinstance(raw_model, str):
            model = SegmentModel.objects.filter(name=raw_model).defer("pipeline").order_by("-version").first()
        if model is None:
            fail("model", f"unknown model {raw_model!r} (give its id or name)")
    if kind is None:
        kind = model.kind if model is not None else Segment.Kind.RULE
    if kind not in Segment.Kind.values:
        fail("kind", f"unknown kind {kind!r}; one of {', '.join(Segment.Kind.values)}")
        raise SpecInvalid(errors)
    out["kind"] = kind

    if kind == Segment.Kind.RULE:
        for key in ("model", "label", "threshold", "below", "top_fraction", "after_fraction", "ties"):
            if key in spec:
                fail(key, "only model-derived segments take this")
        if "rule" not in spec and segment is None:
            fail("rule", "a rule segment needs a rule")
        elif "rule" in spec or segment is not None:
            rule = spec.get("rule", segment.rule if segment else None)
            try:
                rules.rule_validate(rule, field_registry(), self_id=segment.pk if segment else None)
            except rules.RuleInvalid as exc:
                errors.extend(exc.as_list())
            out["rule"] = rule
        out["model"] = None
    else:
        if "rule" in spec:
            fail("rule", f"a {kind} segment is derived from a model, not a rule")
        if model is None and raw_model is None:
            fail("model", f"a {kind} segment needs a model id")
        elif model is not None and model.kind != kind:
            fail("kind", f"model {model.name} v{model.version} is a {model.kind} model, not {kind}")
        out["model"] = model
        out["rule"] = None
        params.update(_model_params(kind, spec, fail))
        if not out["family"] and model is not None:
            out["family"] = ""  # a lone segment of a model is not part of the model's family
    out["params"] = params
    schedule = spec.get("schedule")
    if schedule is not None:
        try:
            schedule_clean(schedule)
        except ScheduleInvalid as exc:
            errors.extend({"path": f"schedule.{e['path']}".rstrip("."), "message": e["message"]} for e in exc.errors)
        out["schedule"] = schedule
    if errors:
        raise SpecInvalid(errors)
    return out


def _model_params(kind: str, spec: dict, fail) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if kind in LABEL_KINDS:
        label = spec.get("label")
        if is_int(label):
            label = str(label)
        if not isinstance(label, str) or not label:
            fail("label", "a cluster number or tier name is required")
        params["label"] = label
        return params
    threshold, below = spec.get("threshold"), spec.get("below")
    top, after = spec.get("top_fraction"), spec.get("after_fraction")
    if (threshold is None and below is None) == (top is None and after is None):
        fail("threshold", "give a score band (threshold and/or below) or a rank band (top_fraction, after_fraction)")
        return params
    if threshold is not None or below is not None:
        for key, value in (("threshold", threshold), ("below", below)):
            if value is not None and not is_number(value):
                fail(key, "expected a number")
        if is_number(threshold) and is_number(below) and below <= threshold:
            fail("below", "must be above threshold")
        params.update({k: v for k, v in (("threshold", threshold), ("below", below)) if v is not None})
    else:
        for key, value in (("top_fraction", top), ("after_fraction", after)):
            if value is not None and (not is_number(value) or not 0 <= value <= 1):
                fail(key, "expected a fraction between 0 and 1")
        top = 1.0 if top is None else top
        if is_number(after) and is_number(top) and after >= top:
            fail("after_fraction", "must be below top_fraction")
        if is_number(top) and top <= 0:
            fail("top_fraction", "must be above 0")
        params["top_fraction"] = top
        if after:
            params["after_fraction"] = after
        ties = spec.get("ties")
        if ties is not None and ties not in TIES:
            fail("ties", f"expected one of {', '.join(TIES)}")
        elif ties == "include":
            if after:
                fail("ties", "taking all tied needs a top band (no after_fraction)")
            params["ties"] = ties
    return params
