"""The three role groups and their model permissions, kept in step after every migrate."""

from django.contrib.auth.models import Group, Permission

from .roles import ADMIN, MARKETER, VIEWER

PRODUCT_APPS = ["customers", "segments", "campaigns", "experiments"]


def groups_ensure(**kwargs) -> None:
    product = Permission.objects.filter(content_type__app_label__in=PRODUCT_APPS)
    plan = {
        VIEWER: product.filter(codename__startswith="view_"),
        MARKETER: product,
        ADMIN: Permission.objects.all(),
    }
    for name, permissions in plan.items():
        group, _ = Group.objects.get_or_create(name=name)
        group.permissions.set(permissions)
