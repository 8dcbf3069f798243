import secrets

from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.management.base import BaseCommand

from core.roles import ADMIN


class Command(BaseCommand):
    help = "Create (or reset) an admin login with a freshly generated password, and print it."

    def add_arguments(self, parser):
        parser.add_argument("--username", default="admin")

    def handle(self, *args, **options):
        password = secrets.token_urlsafe(12)
        user, created = get_user_model().objects.get_or_create(username=options["username"])
        user.is_staff = user.is_superuser = True
        user.set_password(password)
        user.save()
        user.groups.add(Group.objects.get_or_create(name=ADMIN)[0])
        verb = "created" if created else "password reset"
        self.stdout.write(f"admin login {verb}: username {user.username} password {password}")
