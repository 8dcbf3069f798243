"""The automation builder's form: steps and variants added and removed in place, read back
into the JSON spec automation_create takes; the trigger and the exit and re-entry rules as
sentences; a spec error turned into the step, variant and field it is about.

Field names: a step block carries a hidden `step` = i and its fields `s{i}_wait`, `s{i}_unit`,
`s{i}_unless`; a variant block inside it a hidden `s{i}_variant` = j and `s{i}v{j}_name`,
`_subject`, `_text`, `_html`, `_weight`. Numbers are never reused while the page lives, so a
removed block leaves a gap and the others keep their fields.
"""

from __future__ import annotations

import re

from ..errors import CampaignError

MAX_STEPS = 20  # as automation_create allows
MAX_VARIANTS = 6
EXIT_WORDS = {"ordered": "place an order", "left_segment": "leave the trigger segment", "unsubscribed": "unsubscribe"}
UNLESS_WORDS = {"ordered": "has ordered since entry"}


def _indexes(values) -> list[int]:
    out = []
    for v in values:
        if str(v).isdigit() and int(v) not in out:
            out.append(int(v))
    return out


def new_variant(i: int, j: int, name: str = "") -> dict:
    return {"j": j, "key": f"{i}:{j}", "name": name or chr(ord("a") + j % 26), "subject": "", "text": "", "html": "",
            "weight": "1"}


def new_step(i: int) -> dict:
    return {"i": i, "wait": "0" if i == 0 else "1", "unit": "hours" if i == 0 else "days", "unless": "",
            "variants": [new_variant(i, 0)]}


def step_blocks(post) -> list[dict]:
    """The steps and their variants as the form holds them (the page's order)."""
    steps = []
    for i in _indexes(post.getlist("step")):
        variants = []
        for j in _indexes(post.getlist(f"s{i}_variant")):
            p = f"s{i}v{j}_"
            variants.append({"j": j, "key": f"{i}:{j}", "name": post.get(p + "name", "").strip(), "subject": post.get(p + "subject", ""),
                             "text": post.get(p + "text", ""), "html": post.get(p + "html", ""),
                             "weight": post.get(p + "weight", "1").strip()})
        steps.append({"i": i, "wait": post.get(f"s{i}_wait", "0").strip(), "unit": post.get(f"s{i}_unit", "hours"),
                      "unless": post.get(f"s{i}_unless", ""), "variants": variants})
    return steps


def _wait_hours(step: dict, n: int) -> float:
    try:
        wait = float(step["wait"] or 0)
    except ValueError:
        raise CampaignError(f"steps[{n}].wait_hours must be a number") from None
    return wait * (24 if step["unit"] == "days" else 1)


def variant_spec(variant: dict, j: int) -> dict:
    out = {"name": variant["name"] or chr(ord("a") + j % 26), "subject": variant["subject"], "text": variant["text"],
           "html": variant["html"]}
    if variant["weight"] not in ("", "1"):
        out["weight"] = variant["weight"]
    return out


def steps_spec(blocks: list[dict]) -> list[dict]:
    return [{"wait_hours": _wait_hours(step, n), "unless": step["unless"],
             "variants": [variant_spec(v, j) for j, v in enumerate(step["variants"])]}
            for n, step in enumerate(blocks)]


def trigger_spec(post) -> dict:
    kind = post.get("trigger_kind", "")
    if kind == "segment":
        return {"segment": int(post["trigger_segment"]) if post.get("trigger_segment", "").isdigit() else ""}
    if kind == "event":
        return {"event": post.get("trigger_event", "").strip()}
    if kind == "date":
        offset = post.get("date_offset_days", "0").strip() or "0"
        if not offset.lstrip("-").isdigit():
            raise CampaignError("trigger.date.offset_days: days before/after the date, a whole number")
        return {"date": {"attribute": post.get("date_attribute", "").strip(), "offset_days": int(offset)}}
    raise CampaignError("trigger: choose what starts the automation")


def spec_from_post(post, exit_rules) -> dict:
    """The JSON spec automation_create takes, from the builder's form."""
    reentry = post.get("reentry_days", "").strip()
    if reentry and not reentry.isdigit():
        raise CampaignError("reentry_days: a whole number of days, or empty for once ever")
    try:
        holdout = float(post.get("holdout") or 0) / 100
    except ValueError:
        raise CampaignError("holdout: a share in %, e.g. 10") from None
    kind = post.get("trigger_kind", "")
    spec = {
        "name": post.get("name", "").strip(), "trigger": trigger_spec(post), "steps": steps_spec(step_blocks(post)),
        "holdout": holdout, "reentry_days": int(reentry) if reentry else None,
        "exit": [e for e in post.getlist("exit") if e in exit_rules],
        "include_current": kind == "segment" and post.get("include_current") == "on",
        "attribution_days": post.get("attribution_days") or 7,
    }
    if post.get("audience", "").isdigit():
        spec["audience"] = int(post["audience"])
    if post.get("frequency_cap"):
        spec["frequency_cap"] = post["frequency_cap"]
    if post.get("quiet_start") or post.get("quiet_end"):
        spec["quiet_hours"] = {"start": post.get("quiet_start", ""), "end": post.get("quiet_end", "")}
    return spec


# ------------------------------------------------------------------------------- sentences

def _hours(hours: float) -> str:
    if hours == 0:
        return "at once"
    if hours % 24 == 0:
        days = int(hours // 24)
        return f"{days} day{'s' if days != 1 else ''}"
    return f"{hours:g} hour{'s' if hours != 1 else ''}"


def _join(words: list[str], last: str = "or") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


def sentences(post, segment_names: dict[str, str]) -> list[str]:
    """The automation as a marketer would say it: what starts it, who may enter, the steps,
    when a customer leaves early, whether they may come back. Reads the form as it is, so a
    half-written one reads as far as it goes."""
    out = []
    kind = post.get("trigger_kind", "")
    if kind == "segment":
        name = segment_names.get(post.get("trigger_segment", ""), "")
        start = f"Starts when a customer enters the segment “{name}”" if name else "Starts when a customer enters a segment (choose it)"
        start += ", including its members now." if post.get("include_current") == "on" else " from now on (its members now do not enter)."
    elif kind == "event":
        event = post.get("trigger_event", "").strip()
        start = f"Starts when a customer does “{event}” (an event from the product or an import)." if event else "Starts when a customer does something (name the event)."
    elif kind == "date":
        attribute = post.get("date_attribute", "").strip() or "a date"
        offset = post.get("date_offset_days", "0").strip() or "0"
        days = int(offset) if offset.lstrip("-").isdigit() else 0
        when = "on" if days == 0 else f"{abs(days)} day{'s' if abs(days) != 1 else ''} {'after' if days > 0 else 'before'}"
        start = f"Starts {when} the customer's {attribute}, in their own time zone."
    else:
        start = "Choose what starts it."
    out.append(start)
    audience = segment_names.get(post.get("audience", ""), "")
    if audience:
        out.append(f"Only customers in “{audience}” enter.")
    holdout = post.get("holdout", "").strip() or "0"
    out.append(f"{holdout}% of entries are held out and get nothing: they are the control the report compares with."
               if holdout not in ("0", "0.0") else "Nobody is held out: the report has no control to compare with.")
    for n, step in enumerate(step_blocks(post)):
        try:
            wait = _wait_hours(step, n)
        except CampaignError:
            wait = 0.0
        after = "entry" if n == 0 else f"step {n}"
        when = f"{_hours(wait)} after {after}" if wait else f"at once after {after}"
        names = [v["name"] or chr(ord("a") + j % 26) for j, v in enumerate(step["variants"])]
        what = (f"sends “{names[0]}”" if len(names) == 1 else
                f"sends one of {_join([f'“{x}”' for x in names])}, chosen at random per entry")
        unless = f", unless the customer {UNLESS_WORDS[step['unless']]}" if step["unless"] in UNLESS_WORDS else ""
        out.append(f"Step {n + 1}: {when}, {what}{unless}.")
    exits = [EXIT_WORDS[e] for e in post.getlist("exit") if e in EXIT_WORDS]
    out.append(f"A customer leaves early when they {_join(exits)}." if exits else "Nobody leaves early: every entry gets every step.")
    reentry = post.get("reentry_days", "").strip()
    out.append(f"A customer may enter again {reentry} days after they last entered." if reentry.isdigit()
               else "A customer enters once ever.")
    return out


# ---------------------------------------------------------------------------------- errors

PATH = re.compile(r"^steps\[(\d+)\](?:\.variants\[(\d+)\])?(?:\.(\w+))?:?\s*(.*)$", re.S)
NEEDS = re.compile(r"^steps\[(\d+)\] (needs .*)$")


def error_place(message: str, blocks: list[dict]) -> dict:
    """Where a spec error points in the form: the step (and variant, and field) it names, and
    the message in the builder's words ("Step 2, variant b: subject is required")."""
    place = {"message": message, "step": None, "variant": None, "field": ""}
    needs = NEEDS.match(message)
    match = PATH.match(message) if not needs else None
    if needs:
        n, rest = int(needs.group(1)), needs.group(2)
        variant_n, field = None, ""
    elif match:
        n = int(match.group(1))
        variant_n = int(match.group(2)) if match.group(2) is not None else None
        field, rest = match.group(3) or "", match.group(4)
    else:
        return place
    if n >= len(blocks):
        return place
    step = blocks[n]
    where = f"Step {n + 1}"
    if variant_n is not None and variant_n < len(step["variants"]):
        variant = step["variants"][variant_n]
        where += f", variant {variant['name'] or chr(ord('a') + variant_n % 26)}"
        place["variant"] = variant["j"]
    field_words = {"wait_hours": "wait", "unless": "skip condition"}.get(field, field)
    text = f"{field_words} {rest}".strip() if field else rest
    if not field and variant_n is not None:
        # A template problem names its part ("variant 'a', text: line 1: ...").
        named = re.match(r"^(?:variant .*?, )?(subject|preheader|text|html|body)\b:?\s*", rest)
        if named:
            field, text = named.group(1), rest[named.end():]
            text = text if field == "body" else f"{field}: {text}"
    place.update(step=step["i"], field={"wait_hours": "wait", "body": "text"}.get(field, field),
                 message=f"{where}: {text}")
    return place
