"""``take_screenshots [--out DIR]``: the main pages of the demo, as each role sees them, saved
as PNG files for the README (``make screenshots`` seeds a fresh demo database first).

The pages are served by a server thread inside this command (the configured database, a
free port) and photographed by Playwright driving Debian's chromium; no browser is
downloaded. Exits with an error naming the page when one does not answer 200.
"""

from __future__ import annotations

import os
from pathlib import Path

from django.contrib.staticfiles.handlers import StaticFilesHandler
from django.core.management.base import BaseCommand, CommandError
from django.test.testcases import LiveServerThread
from django.urls import reverse

from consortium.demo import DEMO_PASSWORD, DEMO_SLUG
from consortium.models import Consortium

CHROMIUM = "/usr/bin/chromium"
WIDTH, HEIGHT = 1280, 860


# Pages whose charts sit below the first screen are photographed whole.
WHOLE_PAGE = {"03-finance-valuation-run", "05-participant-contribution"}


def _shots(consortium: Consortium) -> list[tuple[str, str | None, str]]:
    """(file name, login or None, path) of each screenshot, in the README's order."""
    from incentives.models import Dispute, RevenuePool, Statement

    def url(name: str, **kwargs) -> str:
        return reverse(name, kwargs={"slug": consortium.slug, **kwargs})

    pool = RevenuePool.objects.filter(consortium=consortium).order_by("-created_at").first()
    valuation = consortium.valuation_runs.order_by("-created_at").first()
    dispute = Dispute.objects.filter(statement__pool__consortium=consortium).select_related(
        "statement__participant").first()
    filer = dispute.statement.participant.slug if dispute else consortium.participants.order_by("slug").first().slug
    statement = Statement.objects.filter(pool=pool, participant__slug=filer).order_by("-version").first()
    shots = [
        ("01-sign-in", None, reverse("login")),
        ("02-finance-overview", "finance@demo.test", url("consortium-page")),
        ("03-finance-valuation-run", "finance@demo.test", url("valuation-run-page", valuation_run_id=valuation.pk)),
        ("04-finance-revenue-pool", "finance@demo.test", url("pool-page", pool_id=pool.pk)),
        ("05-participant-contribution", f"{filer}@demo.test", url("contributions-page")),
        ("06-participant-statement", f"{filer}@demo.test", url("statement-page", statement_id=statement.pk)),
        ("07-governance-disputes", "governance@demo.test", url("disputes-page")),
        ("08-governance-dispute", "governance@demo.test", url("dispute-page", dispute_id=dispute.pk)),
        ("09-auditor-ledger", "auditor@demo.test", url("ledger-page")),
        ("10-auditor-checkpoints", "auditor@demo.test", url("checkpoints-page")),
    ]
    return shots


class Command(BaseCommand):
    help = "Save screenshots of the demo's main pages (run seed_demo first; make screenshots does both)."

    def add_arguments(self, parser):
        parser.add_argument("--out", default="docs/screenshots", help="folder of the PNG files (default docs/screenshots)")

    def handle(self, *args, out, **options):
        consortium = Consortium.objects.filter(slug=DEMO_SLUG).first()
        if consortium is None or not consortium.revenue_pools.exists():
            raise CommandError("No settled demo consortium here: run `manage.py seed_demo` first.")
        if not os.path.exists(CHROMIUM):
            raise CommandError(f"{CHROMIUM} is missing: apt-get install chromium")
        shots = _shots(consortium)
        folder = Path(out)
        folder.mkdir(parents=True, exist_ok=True)
        server = LiveServerThread("127.0.0.1", StaticFilesHandler)
        server.daemon = True
        server.start()
        server.is_ready.wait()
        if server.error:
            raise CommandError(f"the page server did not start: {server.error}")
        # Playwright's sync API runs an event loop in this thread; the ORM work is done.
        os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
        try:
            self._take(f"http://127.0.0.1:{server.port}", shots, folder)
        finally:
            server.terminate()
        self.stdout.write(f"{len(shots)} screenshots in {folder}/")

    def _take(self, base: str, shots, folder: Path) -> None:
        from playwright.sync_api import sync_playwright

        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
            try:
                contexts = {}
                for name, login, path in shots:
                    if login not in contexts:
                        contexts[login] = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})
                        if login is not None:
                            self._sign_in(contexts[login].new_page(), base, login)
                    page = contexts[login].new_page()
                    response = page.goto(base + path)
                    if response is None or response.status != 200:
                        raise CommandError(f"{path} as {login or 'a visitor'} answered "
                                           f"{response.status if response else 'nothing'}")
                    page.wait_for_load_state("networkidle")
                    page.screenshot(path=str(folder / f"{name}.png"), full_page=name in WHOLE_PAGE)
                    page.close()
                    self.stdout.write(f"  {name}.png  {path}")
            finally:
                browser.close()

    @staticmethod
    def _sign_in(page, base: str, login: str) -> None:
        page.goto(f"{base}/login/")
        page.get_by_label("Email").fill(login)
        page.get_by_label("Password").fill(DEMO_PASSWORD)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{base}/")
        page.close()
