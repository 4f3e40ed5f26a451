"""Dispute pages: filing from a statement line (the service's refusals next to the field, what
was typed kept, nothing written), the queue with deadlines, a dispute with its trail and the
re-valuation side by side, and governance's actions (each allowed only in its state)."""

from __future__ import annotations

import csv
import io
import re
from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.cache import cache
from django.core.files.uploadedfile import SimpleUploadedFile
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consortium.access import Principal
from consortium.models import Transparency
from incentives.models import Dispute, DisputeEvent, RevenuePool, Statement
from incentives.services import dispute_file, dispute_revaluation_order, dispute_review
from ledger.currencies import money_text
from ledger.models import LedgerEntry
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.incentives.conftest import valued_run
from tests.incentives.worlds import disputes_in_every_state, pools_in_every_state
from valuation.models import ValuationRun

pytestmark = pytest.mark.django_db


@pytest.fixture
def world(consortium, vrun, staff):
    pools = pools_in_every_state(consortium, vrun)
    issued = {s.participant.slug: s for s in pools["issued"].statements.select_related("participant", "pool")}
    disputes = disputes_in_every_state(consortium, issued, governance=staff.principal("governance"))
    draft = pools["drafted"].statements.get(participant__slug="alpha")
    return {"issued": issued, "disputes": disputes, "draft": draft}


def _participant(consortium, slug="alpha"):
    return MembershipFactory(consortium=consortium, role="participant",
                             participant=consortium.participants.get(slug=slug)).user


def _file_url(statement) -> str:
    return f"/c/acme/statements/{statement.pk}/dispute"


def _url(dispute, action: str = "") -> str:
    return f"/c/acme/disputes/{dispute.pk}/{action}"


def _as(client, user):
    client.force_login(user)
    return client


def _page(response) -> str:
    return response.content.decode()


# -- filing -----------------------------------------------------------------------------------


def test_the_form_preselects_the_line_from_the_statement_link(client, consortium, world):
    response = _as(client, _participant(consortium)).get(_file_url(world["issued"]["alpha"]) + "?line=share")
    assert response.status_code == 200
    assert response.context["form"].initial == {"line": "share"}
    assert '<option value="share" selected>' in _page(response)


def test_a_participant_files_with_an_attachment_and_lands_on_the_dispute(client, consortium, world):
    alpha = world["issued"]["alpha"]
    evidence = SimpleUploadedFile("counts.csv", b"round,examples\n1,120\n", content_type="text/csv")
    response = _as(client, _participant(consortium)).post(
        _file_url(alpha), {"line": "share", "reason": "Our share is too small.", "attachment": evidence}, follow=True)
    dispute = Dispute.objects.get(statement=alpha, line="share")
    assert response.redirect_chain == [(f"/c/acme/disputes/{dispute.pk}/", 302)]
    page = _page(response)
    assert "Your dispute was filed" in page and 'data-testid="dispute-status">Open<' in page
    assert f'data-testid="dispute-deadline">{dispute.response_deadline:%Y-%m-%d}<' in page
    assert f'href="/api/v1/disputes/{dispute.pk}/attachment">counts.csv</a>' in page
    assert dispute.attachment_content_type == "text/csv" and dispute.reason == "Our share is too small."


def test_an_empty_reason_shows_the_services_message_and_keeps_the_line(client, consortium, world):
    before = Dispute.objects.count()
    response = _as(client, _participant(consortium)).post(_file_url(world["issued"]["alpha"]),
                                                          {"line": "share", "reason": "   "})
    assert response.status_code == 400
    assert response.context["form"].errors == {"reason": ["Say why you dispute this line."]}
    assert '<option value="share" selected>' in _page(response)
    assert Dispute.objects.count() == before


def test_an_attachment_over_the_limit_is_413_with_the_reason_kept(client, consortium, world, settings):
    settings.UPLOAD_MAX_BYTES = 100
    before = Dispute.objects.count()
    big = SimpleUploadedFile("big.pdf", b"%PDF" + b"x" * 200, content_type="application/pdf")
    response = _as(client, _participant(consortium)).post(
        _file_url(world["issued"]["alpha"]), {"line": "share", "reason": "See the attached log.", "attachment": big})
    assert response.status_code == 413
    assert response.context["form"].errors["attachment"] == ["the attachment is 204 bytes; the limit is 100 bytes."]
    assert "See the attached log.</textarea>" in _page(response)
    assert Dispute.objects.count() == before


def test_a_file_far_over_the_limit_is_413_too_with_the_line_and_reason_kept(client, consortium, world, settings):
    settings.UPLOAD_MAX_BYTES = 10
    huge = SimpleUploadedFile("huge.pdf", b"%PDF" + b"x" * 3_000_000, content_type="application/pdf")
    response = _as(client, _participant(consortium)).post(
        _file_url(world["issued"]["alpha"]), {"line": "share", "reason": "Logs attached.", "attachment": huge})
    assert response.status_code == 413
    assert "the limit is 10 bytes" in response.context["form"].errors["attachment"][0]
    assert "Logs attached.</textarea>" in _page(response) and '<option value="share" selected>' in _page(response)
    assert not Dispute.objects.filter(line="share").exists()


def test_a_document_of_another_type_is_refused_on_the_attachment(client, consortium, world):
    page = SimpleUploadedFile("page.html", b"<script>x</script>", content_type="text/html")
    response = _as(client, _participant(consortium)).post(
        _file_url(world["issued"]["alpha"]), {"line": "share", "reason": "x", "attachment": page})
    assert response.status_code == 400 and "Attach a document" in response.context["form"].errors["attachment"][0]


def test_a_second_undecided_dispute_on_a_line_is_409_and_nothing_is_written(client, consortium, world):
    before = Dispute.objects.count()
    response = _as(client, _participant(consortium)).post(_file_url(world["issued"]["alpha"]),
                                                          {"line": "amount", "reason": "Still too low."})
    assert response.status_code == 409
    assert "undecided dispute" in response.context["form"].non_field_errors()[0]
    assert "Still too low.</textarea>" in _page(response)
    assert Dispute.objects.count() == before


def test_a_superseded_statement_is_409(client, consortium, world, staff):
    client = _as(client, staff.users["governance"])
    reviewed = world["disputes"]["reviewed"]
    amount = money_text(world["issued"]["alpha"].amount + Decimal("1.00"), "EUR")
    client.post(_url(reviewed, "decide"), {"outcome": "upheld", "amount": amount, "note": "Round 5 was missing."})
    alpha = Statement.objects.get(pk=world["issued"]["alpha"].pk)
    assert alpha.status == "superseded"
    _as(client, _participant(consortium))
    assert "has been revised" in _page(client.get(_file_url(alpha)))  # said before filing, too
    response = client.post(_file_url(alpha), {"line": "share", "reason": "x"})
    assert response.status_code == 409 and "has been revised" in response.context["form"].non_field_errors()[0]


def test_filing_access(client, member, consortium, world):
    alpha, beta, draft = world["issued"]["alpha"], world["issued"]["beta"], world["draft"]
    assert client.get(_file_url(alpha)).status_code == 302
    participant = _participant(consortium)
    for statement in (beta, draft):
        assert _as(client, participant).get(_file_url(statement)).status_code == 404
        assert _as(client, participant).post(_file_url(statement), {"line": "share", "reason": "x"}).status_code == 404
    for role in ("finance", "governance", "auditor"):
        assert _as(client, member(role)).get(_file_url(alpha)).status_code == 403
        assert _as(client, member(role)).post(_file_url(alpha), {"line": "share", "reason": "x"}).status_code == 403
    other = ConsortiumFactory(slug="other")
    outsider = MembershipFactory(consortium=other, role="participant",
                                 participant=ParticipantFactory(consortium=other, slug="alpha")).user
    assert _as(client, outsider).get(_file_url(alpha)).status_code == 404
    assert not Dispute.objects.filter(line="share").exists()


# -- the queue --------------------------------------------------------------------------------


def test_governance_sees_the_queue_undecided_first_by_deadline_with_overdue_marked(client, world, staff):
    disputes = world["disputes"]
    Dispute.objects.filter(pk=disputes["beta"].pk).update(response_deadline=timezone.localdate() - timedelta(days=2))
    response = _as(client, staff.users["governance"]).get("/c/acme/disputes/")
    listed = [row["dispute"].pk for row in response.context["rows"]]
    assert listed[0] == disputes["beta"].pk and listed[-1] == disputes["rejected"].pk and len(listed) == 4
    page = _page(response)
    assert '<span class="overdue">overdue</span>' in page and page.count('class="overdue"') == 1
    assert f"{disputes['open'].response_deadline:%Y-%m-%d}" in page
    assert '<span class="badge decided">Decided</span>' in page


def test_the_queue_filters_by_status_and_downloads_as_csv(client, world, staff):
    client = _as(client, staff.users["governance"])
    assert len(client.get("/c/acme/disputes/?status=decided").context["rows"]) == 1
    assert len(client.get("/c/acme/disputes/?status=undecided").context["rows"]) == 3
    assert len(client.get("/c/acme/disputes/?status=under_review").context["rows"]) == 1
    assert "Select a valid choice" in _page(client.get("/c/acme/disputes/?status=lost"))
    rows = list(csv.DictReader(io.StringIO(_page(client.get("/c/acme/disputes/?format=csv&status=undecided")))))
    assert {row["Participant"] for row in rows} == {"alpha", "beta"} and len(rows) == 3
    assert rows[0]["Overdue"] == "no" and rows[0]["Response due"]


def test_a_participant_sees_only_its_own_disputes_and_staff_all(client, member, consortium, world):
    mine = _as(client, _participant(consortium)).get("/c/acme/disputes/").context["rows"]
    assert {row["dispute"].participant.slug for row in mine} == {"alpha"} and len(mine) == 3
    for role in ("finance", "auditor"):
        assert len(_as(client, member(role)).get("/c/acme/disputes/").context["rows"]) == 4
    assert client.logout() is None and client.get("/c/acme/disputes/").status_code == 302
    outsider = MembershipFactory(consortium=ConsortiumFactory(slug="other"), role="governance").user
    assert _as(client, outsider).get("/c/acme/disputes/").status_code == 404


# -- one dispute ------------------------------------------------------------------------------


def test_a_participant_reads_its_dispute_and_not_anothers(client, consortium, world):
    client = _as(client, _participant(consortium))
    open_dispute = world["disputes"]["open"]
    response = client.get(_url(open_dispute))
    page = _page(response)
    assert response.status_code == 200
    assert f'data-testid="line-figure">{money_text(world["issued"]["alpha"].amount, "EUR")} EUR<' in page
    assert "Too low." in page and f"/api/v1/disputes/{open_dispute.pk}/attachment" in page
    assert "Filed" in page and 'data-testid="dispute-status">Open<' in page
    assert "Governance&#x27;s actions" not in page and "Start the review" not in page
    assert client.get(_url(world["disputes"]["beta"])).status_code == 404


def test_each_action_is_offered_only_in_its_state(client, world, staff):
    client = _as(client, staff.users["governance"])
    offered = {name: set(client.get(_url(world["disputes"][name])).context["forms"])
               for name in ("open", "reviewed", "rejected")}
    assert offered == {"open": {"review"}, "reviewed": {"revaluation", "upheld", "rejected"}, "rejected": set()}
    for role in ("drafter", "auditor"):
        assert _as(client, staff.users[role]).get(_url(world["disputes"]["open"])).context["forms"] == {}


def test_governance_reviews_revalues_compares_and_upholds(client, consortium, world, staff,
                                                          django_capture_on_commit_callbacks):
    client = _as(client, staff.users["governance"])
    dispute = world["disputes"]["open"]
    response = client.post(_url(dispute, "review"), {"note": "Looking into it."}, follow=True)
    assert "The dispute is under review." in _page(response)
    with django_capture_on_commit_callbacks(execute=True):
        response = client.post(_url(dispute, "revaluation"), {"method": "exact", "seed": "3"})
    assert response.status_code == 302
    dispute.refresh_from_db()
    assert dispute.status == "revaluation_ordered" and dispute.revaluation.status == "succeeded"
    response = client.get(_url(dispute))
    page = _page(response)
    rows = response.context["comparison_rows"]
    assert {row["participant"] for row in rows} == {"alpha", "beta", "gamma", "delta-0", "delta-1"}
    alpha = next(row for row in rows if row["participant"] == "alpha")
    assert alpha["disputing"] and alpha["outside_old_interval"] is False and alpha["difference"] == 0.0
    assert alpha["new_share"] == dispute.revaluation.scores.get(participant__slug="alpha").share
    assert 'data-testid="comparison"' in page and 'data-testid="revaluation-comparison-table"' in page
    statement = world["issued"]["alpha"]
    implied = money_text(statement.amount, "EUR")  # exact again: the same values, the same split
    assert response.context["implied"] == implied
    assert response.context["forms"]["upheld"].initial == {"amount": implied}
    revised = money_text(statement.amount + Decimal("2.50"), "EUR")
    response = client.post(_url(dispute, "decide"), {"outcome": "upheld", "amount": revised, "note": "Agreed."},
                           follow=True)
    page = _page(response)
    dispute.refresh_from_db()
    assert "Dispute upheld: version 2 of the statement was issued." in page
    assert f'href="/c/acme/statements/{dispute.revised_statement_id}/" data-testid="revised-statement">version 2, {revised} EUR' in page
    assert 'data-testid="decision-note">Agreed.<' in page


def test_a_second_decision_is_409_with_the_message_and_writes_nothing(client, world, staff):
    client = _as(client, staff.users["governance"])
    rejected = world["disputes"]["rejected"]
    counts = (DisputeEvent.objects.count(), LedgerEntry.objects.count(), Statement.objects.count())
    response = client.post(_url(rejected, "decide"), {"outcome": "upheld", "amount": "1.00", "note": "Second."})
    assert response.status_code == 409
    assert "already decided" in _page(response) and 'data-testid="refusal"' in _page(response)
    assert (DisputeEvent.objects.count(), LedgerEntry.objects.count(), Statement.objects.count()) == counts


def test_a_decision_without_a_written_reason_or_with_a_bad_amount_keeps_what_was_typed(client, world, staff):
    client = _as(client, staff.users["governance"])
    reviewed = world["disputes"]["reviewed"]
    response = client.post(_url(reviewed, "decide"), {"outcome": "upheld", "amount": "12.34", "note": ""})
    assert response.status_code == 400
    form = response.context["forms"]["upheld"]
    assert form.errors == {"note": ["This field is required."]} and 'value="12.34"' in _page(response)
    response = client.post(_url(reviewed, "decide"), {"outcome": "upheld", "amount": "10.005", "note": "Fine."})
    assert response.status_code == 400
    assert response.context["forms"]["upheld"].errors["amount"] == ["EUR amounts have at most 2 decimal(s); 10.005 does not."]
    assert "Fine.</textarea>" in _page(response)
    response = client.post(_url(reviewed, "decide"), {"outcome": "upheld", "note": "No amount."})
    assert response.status_code == 400 and "names the revised statement" in _page(response)
    assert Dispute.objects.get(pk=reviewed.pk).status == "under_review"


def test_a_refused_review_is_409_and_an_invalid_revaluation_is_400(client, world, staff):
    client = _as(client, staff.users["governance"])
    response = client.post(_url(world["disputes"]["reviewed"], "review"), {"note": ""})
    assert response.status_code == 409 and "only an open one" in _page(response)
    response = client.post(_url(world["disputes"]["reviewed"], "revaluation"), {"method": "exact", "budget": "50"})
    assert response.status_code == 400
    assert "computes its values exactly" in response.context["forms"]["revaluation"].errors["budget"][0]
    assert Dispute.objects.get(pk=world["disputes"]["reviewed"].pk).revaluation_id is None


def test_action_routes_refuse_unknown_actions_gets_and_other_roles(client, member, consortium, world, staff):
    dispute = world["disputes"]["open"]
    assert client.post(_url(dispute, "review")).status_code == 302  # anonymous: sign in first
    governance = _as(client, staff.users["governance"])
    assert governance.post(_url(dispute, "delete")).status_code == 404
    assert governance.get(_url(dispute, "review")).status_code == 405
    for role in ("finance", "auditor"):
        assert _as(client, member(role)).post(_url(dispute, "review")).status_code == 403
    assert _as(client, _participant(consortium)).post(_url(dispute, "review")).status_code == 403
    assert _as(client, _participant(consortium)).post(_url(world["disputes"]["beta"], "review")).status_code == 404
    outsider = MembershipFactory(consortium=ConsortiumFactory(slug="other"), role="governance").user
    assert _as(client, outsider).post(_url(dispute, "review")).status_code == 404
    assert Dispute.objects.get(pk=dispute.pk).status == "open"


@pytest.mark.parametrize("setting, seen", [(Transparency.OWN, {"alpha"}), (Transparency.RANKS, {"alpha"}),
                                           (Transparency.ALL, {"alpha", "beta", "gamma", "delta-0", "delta-1"})])
def test_a_participant_sees_the_comparison_as_its_transparency_allows(
        client, consortium, world, staff, django_capture_on_commit_callbacks, setting, seen):
    dispute = world["disputes"]["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    consortium.transparency = setting
    consortium.save()
    response = _as(client, _participant(consortium)).get(_url(dispute))
    assert {row["participant"] for row in response.context["comparison_rows"]} == seen
    assert response.context["implied"] is None and "data-testid=\"implied-amount\"" not in _page(response)


def test_a_running_revaluation_is_polled_and_reloads_the_page_once_finished(client, world, staff):
    dispute = world["disputes"]["reviewed"]
    dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")  # not committed
    dispute.refresh_from_db()
    ValuationRun.objects.filter(pk=dispute.revaluation_id).update(status="running", progress_total=10, progress_done=4)
    client = _as(client, staff.users["governance"])
    page = _page(client.get(_url(dispute)))
    assert 'hx-trigger="every 2s"' in page and f"/c/acme/valuations/{dispute.revaluation_id}/" in page
    assert "upheld" not in client.get(_url(dispute)).context["forms"]  # no decision while it runs
    part = client.get(_url(dispute) + "?part=revaluation", HTTP_HX_REQUEST="true")
    assert 'hx-trigger="every 2s"' in _page(part) and "4 of 10" in _page(part)
    ValuationRun.objects.filter(pk=dispute.revaluation_id).update(status="failed", error_message="worker lost")
    part = client.get(_url(dispute) + "?part=revaluation", HTTP_HX_REQUEST="true")
    assert part["HX-Refresh"] == "true"
    forms = client.get(_url(dispute)).context["forms"]
    assert set(forms) == {"revaluation", "upheld", "rejected"}  # order again, or decide without it


def test_comparison_and_trail_download_as_csv(client, world, staff, django_capture_on_commit_callbacks):
    dispute = world["disputes"]["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    client = _as(client, staff.users["auditor"])
    rows = list(csv.DictReader(io.StringIO(_page(client.get(_url(dispute) + "?format=csv")))))
    assert len(rows) == 5 and rows[0]["Outside the old 95 % interval"] == "no"
    trail = list(csv.DictReader(io.StringIO(_page(client.get(_url(dispute) + "?format=csv&list=trail")))))
    assert [row["Action"] for row in trail] == ["filed", "reviewed", "revaluation_ordered"]


# -- queries ----------------------------------------------------------------------------------


def _queries(client, user, url) -> int:
    client.force_login(user)
    cache.clear()  # the worst case: the implied amount computed, not read from the cache
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_queue_and_dispute_page_queries_do_not_grow(client, consortium, world, staff, vrun,
                                                    django_capture_on_commit_callbacks):
    governance, participant = staff.users["governance"], _participant(consortium)
    dispute = world["disputes"]["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    urls = ["/c/acme/disputes/", _url(dispute)]
    small = [_queries(client, user, url) for user in (governance, participant) for url in urls]
    for pool in RevenuePool.objects.all():  # make room for three more pools of the same names
        RevenuePool.objects.filter(pk=pool.pk).update(reference=f"{pool.reference}-1")
    more = pools_in_every_state(consortium, vrun)  # more statements, then more disputes on them
    statements = {s.participant.slug: s for s in more["issued"].statements.select_related("participant", "pool")}
    disputes_in_every_state(consortium, statements, governance=staff.principal("governance"))
    large = [_queries(client, user, url) for user in (governance, participant) for url in urls]
    assert Dispute.objects.count() == 8
    assert small == large, (small, large)


def test_the_queue_reads_no_valuation_run(client, consortium, world, staff, django_capture_on_commit_callbacks):
    """The queue shows statements, pools and participants: the runs a dispute names (their
    inputs weigh megabytes at volume) are read on the dispute's own page only."""
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=world["disputes"]["reviewed"],
                                  method="exact")
    client.force_login(staff.users["governance"])
    with CaptureQueriesContext(connection) as captured:
        page = _page(client.get("/c/acme/disputes/"))
    assert "valuation_valuationrun" not in " ".join(query["sql"] for query in captured.captured_queries)
    assert page.count('<span class="badge revaluation_ordered">') == 1


def _revalued_world(slug: str, participants: int, capture):
    """A consortium of ``participants`` whose alpha disputes its amount; the re-valuation has run."""
    consortium = ConsortiumFactory(slug=slug, transparency=Transparency.ALL)
    members = [ParticipantFactory(consortium=consortium, slug="alpha")]
    members += [ParticipantFactory(consortium=consortium, slug=f"p{i}") for i in range(participants - 1)]
    with capture(execute=True):
        run = valued_run(consortium, members)
    issued = pools_in_every_state(consortium, run)["issued"]
    participant = MembershipFactory(consortium=consortium, role="participant", participant=members[0]).user
    governance = MembershipFactory(consortium=consortium, role="governance").user
    dispute = dispute_file(actor=Principal(user=participant), line="amount", reason="Too low.",
                           statement=issued.statements.get(participant=members[0]))
    dispute_review(actor=Principal(user=governance), dispute=dispute)
    with capture(execute=True):
        dispute_revaluation_order(actor=Principal(user=governance), dispute=dispute, method="exact")
    return dispute, participant, governance


def test_the_dispute_page_queries_do_not_grow_with_the_participants(client, django_capture_on_commit_callbacks):
    counts = {}
    for size in (3, 7):
        dispute, participant, governance = _revalued_world(f"size-{size}", size, django_capture_on_commit_callbacks)
        url = f"/c/size-{size}/disputes/{dispute.pk}/"
        counts[size] = (_queries(client, governance, url), _queries(client, participant, url))
        client.force_login(governance)
        assert len(client.get(url).context["comparison_rows"]) == size
    assert counts[3] == counts[7], counts


def test_the_implied_amount_is_computed_once_per_revaluation(client, consortium, world, staff,
                                                            django_capture_on_commit_callbacks):
    dispute = world["disputes"]["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    cache.clear()
    cold, warm = (_page_queries(client, staff.users["governance"], _url(dispute)) for _ in range(2))
    assert cold[1] is not None and cold[1] == warm[1]  # the same amount, from the cache the second time
    assert warm[0] < cold[0]


def _page_queries(client, user, url) -> tuple[int, str | None]:
    """The page's query count and its implied-amount paragraph."""
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        response = client.get(url)
    found = re.search(r'<p class="card" data-testid="implied-amount">.*?</p>', response.content.decode())
    return len(captured), found.group(0) if found else None


def test_a_kept_comparison_follows_a_change_of_the_transparency_setting(client, consortium, world, staff,
                                                                       django_capture_on_commit_callbacks):
    dispute = world["disputes"]["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    participant = _as(client, _participant(consortium))
    consortium.transparency = Transparency.OWN
    consortium.save()
    assert {row["participant"] for row in participant.get(_url(dispute)).context["comparison_rows"]} == {"alpha"}
    consortium.transparency = Transparency.ALL
    consortium.save()
    shown = {row["participant"] for row in participant.get(_url(dispute)).context["comparison_rows"]}
    assert shown == {"alpha", "beta", "gamma", "delta-0", "delta-1"}
    consortium.transparency = Transparency.OWN  # and back: the wider rows are not served again
    consortium.save()
    assert {row["participant"] for row in participant.get(_url(dispute)).context["comparison_rows"]} == {"alpha"}


def test_the_implied_amount_reads_data_volumes_when_the_policy_blends_them(consortium, vrun, staff,
                                                                          django_capture_on_commit_callbacks):
    """Under a policy that weighs data volume, the implied split needs every run's pinned
    inputs (the volumes); an exact re-valuation of an exact run gives back the drafted amounts."""
    from incentives.page_selectors import implied_amount
    from incentives.services import policy_change

    policy = policy_change(actor=staff.principal("governance"), consortium=consortium, blend_alpha="0.5",
                           note="half by data volume")
    issued = pools_in_every_state(consortium, vrun, policy=policy)["issued"]
    statements = {s.participant.slug: s for s in issued.statements.select_related("participant", "pool")}
    dispute = disputes_in_every_state(consortium, statements, governance=staff.principal("governance"))["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    dispute.refresh_from_db()
    volumes = {s.participant.slug: s.data_volume for s in statements.values()}
    assert len(set(volumes.values())) > 1  # the blend has something to weigh
    assert implied_amount(dispute=dispute) == statements["alpha"].amount


def test_a_finished_revaluation_prepares_the_comparison_and_the_implied_amount(client, world, staff,
                                                                               django_capture_on_commit_callbacks):
    """When the re-valuation succeeds, the figures are kept before anyone asks: governance's
    first view reads no score (and shows the same figures as a view computed afresh)."""
    dispute = world["disputes"]["reviewed"]
    cache.clear()
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    client.force_login(staff.users["governance"])
    with CaptureQueriesContext(connection) as captured:
        first = client.get(_url(dispute))
    assert not [q for q in captured if "valuation_participantscore" in q["sql"]]
    cache.clear()
    again = client.get(_url(dispute))
    assert first.context["comparison_rows"] == again.context["comparison_rows"] != []
    assert first.context["implied"] == again.context["implied"] is not None


def test_a_failing_preparation_never_fails_the_revaluation(client, world, staff, django_capture_on_commit_callbacks,
                                                           monkeypatch, caplog):
    from incentives import dispute_figures

    def broken(**kwargs):
        raise RuntimeError("cache down")

    monkeypatch.setattr(dispute_figures, "dispute_implied_kept", broken)
    dispute = world["disputes"]["reviewed"]
    with django_capture_on_commit_callbacks(execute=True):
        dispute_revaluation_order(actor=staff.principal("governance"), dispute=dispute, method="exact")
    dispute.refresh_from_db()
    assert dispute.revaluation.status == "succeeded"
    assert "valuation_run_succeeded receiver failed" in caplog.text
