"""The admin site: open to the Admin role as well as to staff users."""

from django.contrib import admin

from .roles import ADMIN, has_role


class AdminSite(admin.AdminSite):
    site_header = "offerlab administration"
    site_title = "offerlab admin"

    def has_permission(self, request) -> bool:
        # The Admin group holds every model permission; making its members staff by hand
        # as well is a step people forget, and then the role means nothing at /admin/.
        user = request.user
        return user.is_active and (user.is_staff or has_role(user, ADMIN))
