"""Create the benchmark's users with the token keys given, one `name key` a line on stdin."""

import sys

from django.contrib.auth.models import User
from django.core.management.base import BaseCommand
from rest_framework.authtoken.models import Token


class Command(BaseCommand):
    help = __doc__

    def handle(self, *args, **options):
        wanted = dict(line.split() for line in sys.stdin if line.strip())
        have = set(Token.objects.filter(key__in=wanted.values()).values_list("key", flat=True))
        for name, key in wanted.items():
            if key in have:
                continue
            user, _ = User.objects.get_or_create(username=name)
            Token.objects.filter(user=user).delete()
            Token.objects.create(user=user, key=key)
        self.stdout.write(f"{len(wanted)} users, {len(wanted) - len(have)} created")
