"""Who may do what: three groups, checked by every view and API endpoint.

Viewer reads everything; Marketer also creates and launches; Admin also manages providers
and users. A superuser counts as Admin. Kept in `customers` because every app imports it
and it imports nothing above it.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import HttpResponseNotAllowed

VIEWER, MARKETER, ADMIN = "Viewer", "Marketer", "Admin"
RANK = {VIEWER: 1, MARKETER: 2, ADMIN: 3}


def user_role(user) -> str | None:
    if not user or not user.is_authenticated or not user.is_active:
        return None
    if user.is_superuser:
        return ADMIN
    names = getattr(user, "_offerlab_groups", None)
    if names is None:
        names = set(user.groups.values_list("name", flat=True))
        user._offerlab_groups = names  # one query per request, not per check
    best = None
    for name in names:
        if name in RANK and (best is None or RANK[name] > RANK[best]):
            best = name
    return best


def has_role(user, role: str) -> bool:
    current = user_role(user)
    return current is not None and RANK[current] >= RANK[role]


def role_required(role: str, *, read_only: bool | None = None):
    """View decorator: log in first, then at least `role`, else 403.

    A Viewer-level page only reads, so it answers GET and HEAD only (405 otherwise) unless
    `read_only=False` says it takes a POST that saves nothing, like a preview.
    """
    safe_only = role == VIEWER if read_only is None else read_only

    def decorator(view):
        @login_required
        @wraps(view)
        def wrapped(request, *args, **kwargs):
            if not has_role(request.user, role):
                raise PermissionDenied(f"This needs the {role} role.")
            if safe_only and request.method not in ("GET", "HEAD"):
                return HttpResponseNotAllowed(["GET", "HEAD"])
            return view(request, *args, **kwargs)

        return wrapped

    return decorator
