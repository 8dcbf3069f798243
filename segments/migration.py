"""How customers move between the segments of a family across refreshes: the transition
matrix, each customer's path, and the customers at risk of slipping to a worse segment.
Reads only, in SQL over the kept membership versions.

Joining two versions of a million-customer family takes seconds, too slow for a page. So a
family refresh counts its moves once, on the worker, in the same transaction that writes
the new version (services.membership stores `family_moves` as a FamilyTransition); the
page and the API read that row for two consecutive refreshes and fall back to the live
join only for other pairs of versions."""

from __future__ import annotations

from typing import Any

from django.db import connection
from django.db.models import Count, Max, OuterRef, Subquery

from .models import FamilyTransition, Membership, ModelScore, Segment, SegmentRefresh

MOVED_DOWN_KEPT = 100  # the page shows 50; the API may ask for up to this many from the stored list
# Versions looked at, newest first, for memberships still kept (a refresh prunes all but a few).
VERSIONS_PROBED = 12


def family_versions(family: str) -> list[dict[str, Any]]:
    """The refreshes of a family, newest first, and whether their memberships are kept.

    Kept is asked per version with one index probe (membership_unique leads with segment
    and version) instead of a DISTINCT over every kept membership of the family."""
    ids = list(Segment.objects.filter(family=family).values_list("id", flat=True))
    rows = list(SegmentRefresh.objects.filter(segment_id__in=ids).values("version")
                .annotate(refreshed_at=Max("refreshed_at"), size=Count("id")).order_by("-version"))
    out = []
    for i, r in enumerate(rows):
        kept = i < VERSIONS_PROBED and Membership.objects.filter(segment_id__in=ids, version=r["version"]).exists()
        out.append({"version": r["version"], "refreshed_at": r["refreshed_at"], "kept": kept})
    return out


def _family_segments(family: str) -> dict[int, Segment]:
    return {s.id: s for s in Segment.objects.filter(family=family).order_by("id")}


def _default_versions(family: str, old: int | None, new: int | None) -> tuple[int | None, int | None]:
    if old is not None and new is not None:
        return old, new
    kept = [v["version"] for v in family_versions(family) if v["kept"]]
    if new is None:
        new = kept[0] if kept else None
    if old is None:
        older = [v for v in kept if new is None or v < new]
        old = older[0] if older else None
    return old, new


def family_migration(family: str, *, old: int | None = None, new: int | None = None,
                     live: bool = True) -> dict[str, Any]:
    """The transition matrix of customers between two refreshes of a family, in SQL.

    Rows are the old segment (None: not in the family before), columns the new one (None:
    left the family). Defaults to the last two refreshes still kept. `live=False` (the
    page) never joins the two versions: without a stored transition the result says
    `pending` and has no matrix, and the caller queues `family_moves_store` for a worker.
    """
    old, new = _default_versions(family, old, new)
    segments = _family_segments(family)
    result: dict[str, Any] = {
        "family": family, "old_version": old, "new_version": new,
        "segments": [{"id": s.id, "name": s.name, "rank": s.params.get("rank")} for s in segments.values()],
        "matrix": [],
    }
    if new is None or not segments:
        return result
    stored = _stored(family, old, new)
    if stored:
        rows = [(c["from"], c["to"], c["customers"]) for c in stored.matrix]
    elif old is None:
        # Only one refresh kept: everyone entered, as many as each segment's refresh counted.
        rows = [(None, sid, size) for sid, size in SegmentRefresh.objects.filter(
            segment_id__in=list(segments), version=new).values_list("segment_id", "size") if size]
    elif live:
        rows = family_moves_count(family, old, new)
    else:
        result["pending"] = True
        return result
    names = {sid: s.name for sid, s in segments.items()}
    matrix = [{"from": a, "from_name": names.get(a), "to": b, "to_name": names.get(b), "customers": n}
              for a, b, n in rows]
    matrix.sort(key=lambda r: (r["from"] is None, r["from"] or 0, r["to"] is None, r["to"] or 0))
    result["matrix"] = matrix
    result["stayed"] = sum(r["customers"] for r in matrix if r["from"] == r["to"] and r["from"] is not None)
    result["moved"] = sum(r["customers"] for r in matrix if r["from"] != r["to"] and None not in (r["from"], r["to"]))
    result["entered"] = sum(r["customers"] for r in matrix if r["from"] is None)
    result["left"] = sum(r["customers"] for r in matrix if r["to"] is None)
    result["precomputed"] = stored is not None or old is None
    return result


def _stored(family: str, old: int | None, new: int | None) -> FamilyTransition | None:
    if old is None or new is None:
        return None
    return FamilyTransition.objects.filter(family=family, old_version=old, new_version=new).first()


def family_moves_count(family: str, old: int | None, new: int) -> list[tuple[int | None, int | None, int]]:
    """(old segment, new segment, customers) between two versions: one FULL OUTER JOIN."""
    member = Membership._meta.db_table
    segment = Segment._meta.db_table
    side = f"""SELECT m.customer_id, m.segment_id FROM {member} m JOIN {segment} s ON s.id = m.segment_id
               WHERE s.family = %s AND m.version = %s"""
    # FULL OUTER JOIN keeps customers who entered or left the family (PostgreSQL, and
    # SQLite since 3.39).
    sql = f"""SELECT o.segment_id, n.segment_id, COUNT(*)
              FROM ({side}) o FULL OUTER JOIN ({side}) n ON n.customer_id = o.customer_id
              GROUP BY o.segment_id, n.segment_id"""
    with connection.cursor() as cursor:
        cursor.execute(sql, [family, old if old is not None else -1, family, new])
        return [tuple(r) for r in cursor.fetchall()]


def customer_family_history(customer_id: int, family: str) -> list[dict[str, Any]]:
    """Which segment of the family the customer was in at each kept refresh, oldest first."""
    refreshed = SegmentRefresh.objects.filter(segment_id=OuterRef("segment_id"), version=OuterRef("version"))
    rows = (Membership.objects.filter(customer_id=customer_id, segment__family=family)
            .annotate(refreshed_at=Subquery(refreshed.values("refreshed_at")[:1]))
            .values("version", "segment_id", "segment__name", "refreshed_at").order_by("version", "segment_id"))
    return [{"version": r["version"], "segment": r["segment_id"], "segment_name": r["segment__name"],
             "refreshed_at": r["refreshed_at"]} for r in rows]


def _rank_case(alias: str, ranks: dict[int, int]) -> tuple[str, list]:
    whens = " ".join("WHEN %s THEN %s" for _ in ranks)
    params: list = []
    for sid, rank in ranks.items():
        params += [sid, rank]
    return f"(CASE {alias}.segment_id {whens} END)", params


def family_at_risk(family: str, *, old: int | None = None, new: int | None = None, limit: int = 100,
                   margin: float = 0.1, near_boundary: bool = True, live: bool = True) -> dict[str, Any]:
    """Customers a marketer should look at before they slip further.

    moved_down: customers whose segment got worse between two refreshes (segments rank
    0 = best, e.g. RFM tiers in order, churn bands low -> high), worst moves first.
    near_boundary: for score bands of a model (churn risk, value), customers whose score
    sits within `margin` of the band's width from the edge towards the worse band.
    `live=False`: without a stored transition moved_down stays empty (the page queues it).
    """
    old, new = _default_versions(family, old, new)
    segments = _family_segments(family)
    ranks = {sid: s.params["rank"] for sid, s in segments.items() if isinstance(s.params.get("rank"), int)}
    result: dict[str, Any] = {"family": family, "old_version": old, "new_version": new,
                              "moved_down": [], "near_boundary": []}
    names = {sid: s.name for sid, s in segments.items()}
    stored = _stored(family, old, new) if limit <= MOVED_DOWN_KEPT else None
    if stored is not None:
        result["moved_down"] = [{**r, "from_name": names.get(r["from"]), "to_name": names.get(r["to"])}
                                for r in stored.moved_down[:limit]]
    elif ranks and old is not None and new is not None and live:
        result["moved_down"] = [{"customer": c, "from": a, "from_name": names.get(a), "to": b, "to_name": names.get(b),
                                 "ranks_down": d} for c, a, b, d in family_moved_down(ranks, old, new, limit)]
    if near_boundary:
        result["near_boundary"] = _near_boundary(segments, limit=limit, margin=margin)
    return result


def family_moved_down(ranks: dict[int, int], old: int, new: int, limit: int) -> list[tuple]:
    """(customer, old segment, new segment, ranks down) for customers whose segment got
    worse (a higher rank) between two versions, worst moves first."""
    if not ranks:
        return []
    member = Membership._meta.db_table
    old_rank, p1 = _rank_case("o", ranks)
    new_rank, p2 = _rank_case("n", ranks)
    ids = list(ranks)
    marks = ", ".join(["%s"] * len(ids))
    sql = f"""SELECT o.customer_id, o.segment_id, n.segment_id, {new_rank} - {old_rank} AS ranks_down
              FROM {member} o JOIN {member} n ON n.customer_id = o.customer_id
              WHERE o.segment_id IN ({marks}) AND o.version = %s
                AND n.segment_id IN ({marks}) AND n.version = %s AND {new_rank} > {old_rank}
              ORDER BY ranks_down DESC, o.customer_id LIMIT %s"""
    params = p2 + p1 + ids + [old] + ids + [new] + p2 + p1 + [limit]
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [tuple(r) for r in cursor.fetchall()]


def _near_boundary(segments: dict[int, Segment], *, limit: int, margin: float) -> list[dict[str, Any]]:
    """Members of score bands close to the edge towards the next worse band."""
    out: list[dict[str, Any]] = []
    for segment in segments.values():
        edge = segment.params.get("edges")  # [low, high) scores at materialisation, set by refresh
        worse = segment.params.get("worse")  # "higher" or "lower" scores are worse
        if not edge or worse not in ("higher", "lower") or segment.model_id is None:
            continue
        low, high = edge
        boundary, other = (high, low) if worse == "higher" else (low, high)
        if boundary is None:
            continue  # the worst band has no worse neighbour
        width = abs(boundary - other) * margin if other is not None else abs(boundary) * margin
        scores = ModelScore.objects.filter(
            model_id=segment.model_id,
            customer__segment_memberships__segment=segment,
            customer__segment_memberships__version=segment.current_version,
        )
        if worse == "higher":
            scores = scores.filter(score__gte=boundary - width).order_by("-score", "customer_id")
        else:
            scores = scores.filter(score__lte=boundary + width).order_by("score", "customer_id")
        for customer_id, score in scores.values_list("customer_id", "score")[:limit]:
            out.append({"customer": customer_id, "segment": segment.id, "segment_name": segment.name,
                        "score": score, "boundary": boundary})
    out.sort(key=lambda r: abs(r["score"] - r["boundary"]))
    return out[:limit]


def family_ranks(family: str) -> dict[int, int]:
    """Each ranked segment of a family: its rank (0 = best)."""
    return {s.id: s.params["rank"] for s in Segment.objects.filter(family=family)
            if isinstance(s.params.get("rank"), int)}
