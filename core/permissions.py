from rest_framework.permissions import SAFE_METHODS, BasePermission

from .roles import MARKETER, VIEWER, has_role


class RolePermission(BasePermission):
    """Reads need Viewer, writes need Marketer; a view may ask for more with `required_role`."""

    def has_permission(self, request, view) -> bool:
        required = getattr(view, "required_role", None)
        if required is None:
            required = VIEWER if request.method in SAFE_METHODS else MARKETER
        return has_role(request.user, required)
