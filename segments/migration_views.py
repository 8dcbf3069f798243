"""The migration page: how customers of a family of segments moved between its last two refreshes."""

from __future__ import annotations

from typing import Any

from django.http import Http404
from django.shortcuts import render
from django.utils.safestring import mark_safe

from core import charts
from core.jobs import Track, enqueue, jobs_expire_lost
from core.roles import VIEWER, role_required
from core.selectors import jobs_for

from . import migration as moves
from .models import Segment


def family_target(family: str) -> str:
    return f"segments.family:{family}"


@role_required(VIEWER)
def migration(request):
    families = list(Segment.objects.exclude(family="").values_list("family", flat=True).distinct().order_by("family"))
    family = request.GET.get("family") or (families[0] if families else "")
    if family and family not in families:
        raise Http404("No such family of segments.")
    context: dict[str, Any] = {"families": families, "family": family}
    if family:
        # Stored counts only: joining two versions of a million-customer family takes
        # seconds (3.9 s quiet, 11 s busy), so a pair nobody counted yet goes to a worker.
        found = moves.family_migration(family, live=False)
        context["jobs"] = jobs_for(family_target(family), limit=1)
        if context["jobs"] and jobs_expire_lost(ids=[context["jobs"][0].id]):  # its worker is gone: say so
            context["jobs"] = jobs_for(family_target(family), limit=1)
        if found.get("pending"):
            # Queued once; a failed count stays on the page with its reason and a retry.
            if not context["jobs"] or context["jobs"][0].state == "done":
                enqueue("segments.tasks.family_moves_store", family, found["old_version"], found["new_version"],
                        track=Track("family_moves", f"Count how customers of {family} moved from refresh "
                                    f"{found['old_version']} to {found['new_version']}", target=family_target(family),
                                    user=request.user))
                context["jobs"] = jobs_for(family_target(family), limit=1)
            context["moves"] = found
            return render(request, "segments/pages/migration.html", context)
        names = [s["name"] for s in found["segments"]]
        index = {s["id"]: i for i, s in enumerate(found["segments"])}
        labels_from, labels_to = names + ["(not in before)"], names + ["(left)"]
        grid = [[0] * len(labels_to) for _ in labels_from]
        for cell in found["matrix"]:
            i = index.get(cell["from"], len(names))
            j = index.get(cell["to"], len(names))
            grid[i][j] += cell["customers"]
        context.update(
            moves=found,
            chart=mark_safe(charts.matrix_chart(labels_from, labels_to, grid, title=f"How customers moved in {family}")),
            at_risk=moves.family_at_risk(family, old=found["old_version"], new=found["new_version"], limit=50,
                                         near_boundary=False, live=False),  # not on this page
        )
    return render(request, "segments/pages/migration.html", context)
