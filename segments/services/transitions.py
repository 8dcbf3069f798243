"""A family refresh's moves, counted once where the refresh runs (see segments.migration)."""

from __future__ import annotations

import time

from .. import migration
from ..models import FamilyTransition

# Transitions kept per family: the page shows the newest; the API may ask for older pairs,
# which it then joins live from the kept memberships.
KEEP_TRANSITIONS = 20


def family_moves_store(family: str, old: int, new: int) -> FamilyTransition:
    """Count who moved where between two versions of a family and keep it.

    Called inside the refresh's transaction, after the new version is written: the two
    set-based queries see it, and a reader sees the transition and the version together."""
    started = time.perf_counter()
    matrix = [{"from": a, "to": b, "customers": n} for a, b, n in migration.family_moves_count(family, old, new)]
    moved = [{"customer": c, "from": a, "to": b, "ranks_down": d}
             for c, a, b, d in migration.family_moved_down(migration.family_ranks(family), old, new,
                                                           migration.MOVED_DOWN_KEPT)]
    transition, _ = FamilyTransition.objects.update_or_create(
        family=family, old_version=old, new_version=new,
        defaults={"matrix": matrix, "moved_down": moved, "seconds": round(time.perf_counter() - started, 3)},
    )
    FamilyTransition.objects.filter(family=family, new_version__lte=new - KEEP_TRANSITIONS).delete()
    return transition
