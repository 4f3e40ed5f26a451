"""``consortium_create --slug S --name N --participants a,b,c``: scripted set-up."""

from django.core.management.base import BaseCommand, CommandError

from consortium.audit import system_principal
from consortium.services import consortium_create
from core.errors import ServiceError


class Command(BaseCommand):
    help = "Create a consortium and its participants (participant names default to their slugs)."

    def add_arguments(self, parser):
        parser.add_argument("--slug", required=True)
        parser.add_argument("--name", required=True)
        parser.add_argument("--participants", default="", help="comma-separated participant slugs")

    def handle(self, *args, slug, name, participants, **options):
        slugs = [item.strip() for item in participants.split(",") if item.strip()]
        if len(set(slugs)) != len(slugs):
            raise CommandError("--participants names a participant twice.")
        try:
            consortium = consortium_create(
                actor=system_principal(), slug=slug, name=name, participants=[(s, s) for s in slugs]
            )
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(f"Created consortium {consortium.slug} with {len(slugs)} participant(s).")
