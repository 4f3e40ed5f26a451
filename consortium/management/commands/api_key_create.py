"""``api_key_create --consortium S --scopes ingest,validation``: prints the key once."""

from django.core.management.base import BaseCommand, CommandError

from consortium.audit import system_principal
from consortium.models import Consortium
from consortium.services import api_key_create
from core.errors import ServiceError


class Command(BaseCommand):
    help = "Create an API key for a consortium and print it (the only time it is shown)."

    def add_arguments(self, parser):
        parser.add_argument("--consortium", required=True, help="consortium slug")
        parser.add_argument("--scopes", required=True, help="comma-separated: ingest, validation, valuation, read")
        parser.add_argument("--name", default="", help="a label for the key (default: the scopes)")

    def handle(self, *args, consortium, scopes, name, **options):
        found = Consortium.objects.filter(slug=consortium).first()
        if found is None:
            raise CommandError(f"No consortium with slug {consortium!r}.")
        scope_list = [scope.strip() for scope in scopes.split(",")]
        try:
            _api_key, raw_key = api_key_create(
                actor=system_principal(), consortium=found, name=name or f"{','.join(scope_list)} key", scopes=scope_list
            )
        except ServiceError as exc:
            raise CommandError("; ".join(exc.messages)) from None
        self.stdout.write(raw_key)
        self.stderr.write("Store this key now: it is shown once and never again.")
