"""My contribution (/c/<slug>/contributions/): a participant's value per finished valuation
run with its interval, the latest run's rounds, and the other participants exactly as the
API shows them under each transparency setting; staff pick any participant."""

from __future__ import annotations

import csv
import io
import re

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consortium.models import Transparency
from tests.factories import ConsortiumFactory, MembershipFactory, ParticipantFactory
from tests.incentives.conftest import valued_run
from valuation.models import ParticipantScore, ValuationRun

pytestmark = pytest.mark.django_db

URL = "/c/acme/contributions/"


@pytest.fixture
def runs(consortium, participants, django_capture_on_commit_callbacks):
    """Two exact valuation runs (different training runs) of alpha, beta and gamma, oldest first."""
    made = []
    for seed in (0, 1):
        with django_capture_on_commit_callbacks(execute=True):
            run = valued_run(consortium, participants, seed=seed)
        run.refresh_from_db()
        assert run.status == "succeeded", run.error_message
        made.append(run)
    return made


def _score(run, slug: str) -> ParticipantScore:
    return run.scores.get(participant__slug=slug)


def _page(client, user, url=URL):
    client.force_login(user)
    response = client.get(url)
    return response, response.content.decode()


def _csv(response) -> list[list[str]]:
    return list(csv.reader(io.StringIO(response.content.decode())))


def test_a_participant_sees_its_value_and_interval_per_run_in_time_order(client, member, runs):
    response, page = _page(client, member("participant"))
    assert response.status_code == 200
    chart_rows = response.context["series"].rows
    assert [row[1] for row in chart_rows] == [repr(_score(run, "alpha").value) for run in runs]
    first = _score(runs[0], "alpha")
    assert chart_rows[0][3:] == [repr(first.ci_low), repr(first.ci_high)]
    assert chart_rows[1][0].endswith("run-1")  # labelled with the training run's name
    assert 'data-testid="contribution-over-time-table"' in page and repr(first.value) in page
    latest = _score(runs[1], "alpha")
    rounds = response.context["rounds"].rows
    assert rounds == [[t, repr(float(v))] for t, v in sorted(latest.per_round.items())]
    assert "My contribution" in page and "Alpha" in page


def test_own_figures_only_hides_every_other_participant(client, member, runs):
    response, page = _page(client, member("participant"))
    assert [row["participant"] for row in response.context["table"].rows] == ["alpha"]
    for slug in ("beta", "gamma"):
        assert repr(_score(runs[1], slug).value) not in page
        assert f"<td>{slug}</td>" not in page


def test_ranks_setting_shows_the_others_ranks_but_not_their_figures(client, member, consortium, runs):
    consortium.transparency = Transparency.RANKS
    consortium.save()
    response, page = _page(client, member("participant"))
    rows = {row["participant"]: row for row in response.context["table"].rows}
    assert set(rows) == {"alpha", "beta", "gamma"}
    assert rows["beta"] == {"participant": "beta", "rank": _score(runs[1], "beta").rank}
    assert repr(_score(runs[1], "beta").value) not in page
    assert f'data-testid="latest-rank">{_score(runs[1], "alpha").rank}<' in page


def test_all_figures_setting_shows_every_participants_figures(client, member, consortium, runs):
    consortium.transparency = Transparency.ALL
    consortium.save()
    response, page = _page(client, member("participant"))
    assert {row["participant"] for row in response.context["table"].rows} == {"alpha", "beta", "gamma"}
    beta = _score(runs[1], "beta")  # six significant digits on screen (the CSV is exact)
    cells = [beta.rank, format(beta.value, ".6g"), format(beta.stderr, ".6g"),
             f"[{format(beta.ci_low, '.6g')}, {format(beta.ci_high, '.6g')}]"]
    assert "<td>beta</td>" + "".join(f'<td class="num">{cell}</td>' for cell in cells) in page
    # the time series stays the caller's own organisation's
    assert [row[1] for row in response.context["series"].rows] == [repr(_score(r, "alpha").value) for r in runs]


def test_a_participant_asking_for_another_participant_gets_404(client, member, runs):
    response, _ = _page(client, member("participant"), URL + "?participant=beta")
    assert response.status_code == 404
    response, _ = _page(client, member("participant"), URL + "?participant=alpha")
    assert response.status_code == 200


@pytest.mark.parametrize("role", ["finance", "governance", "auditor"])
def test_staff_see_the_first_participant_by_default_and_choose_another(client, member, runs, role):
    user = member(role)
    response, page = _page(client, user)
    assert response.status_code == 200 and response.context["participant"].slug == "alpha"
    assert 'name="participant"' in page and "Contributions: Alpha" in page
    response, page = _page(client, user, URL + "?participant=gamma")
    assert [row[1] for row in response.context["series"].rows] == [repr(_score(r, "gamma").value) for r in runs]
    assert len(response.context["table"].rows) == 3  # staff see every participant's figures


def test_an_unknown_participant_for_staff_is_an_error_next_to_the_selector(client, member, runs):
    response, page = _page(client, member("finance"), URL + "?participant=nobody")
    assert response.status_code == 200
    assert "Select a valid choice" in page and response.context["participant"].slug == "alpha"


def test_the_series_the_rounds_and_the_participants_download_as_csv(client, member, runs, consortium):
    consortium.transparency = Transparency.RANKS
    consortium.save()
    client.force_login(member("participant"))
    series = _csv(client.get(URL + "?format=csv&list=series"))
    assert series[0] == ["Valuation run", "Value", "Standard error", "95 % low", "95 % high"]
    assert [row[1] for row in series[1:]] == [repr(_score(run, "alpha").value) for run in runs]
    rounds = _csv(client.get(URL + "?format=csv&list=rounds"))
    assert rounds[0] == ["Round", "Value"] and len(rounds) == 1 + len(_score(runs[1], "alpha").per_round)
    everyone = _csv(client.get(URL + "?format=csv"))
    beta = next(row for row in everyone if row[0] == "beta")
    assert beta[1] == str(_score(runs[1], "beta").rank) and beta[2:] == ["", "", "", "", ""]


def test_no_finished_run_yet_says_so(client, member, consortium):
    response, page = _page(client, member("participant"))
    assert response.status_code == 200 and "has finished yet" in page


def test_access_anonymous_outsider_and_every_role(client, member, runs):
    response = client.get(URL)
    assert response.status_code == 302 and response["Location"].startswith("/login/")
    outsider = MembershipFactory(consortium=ConsortiumFactory(slug="other"), role="finance").user
    assert _page(client, outsider)[0].status_code == 404
    for role in ("finance", "governance", "auditor", "participant"):
        assert _page(client, member(role))[0].status_code == 200


def _queries(client, user, url) -> int:
    client.force_login(user)
    with CaptureQueriesContext(connection) as captured:
        assert client.get(url).status_code == 200
    return len(captured)


def test_queries_do_not_grow_with_runs_or_participants(client, django_capture_on_commit_callbacks):
    counts = {}
    for size in (1, 3):
        consortium = ConsortiumFactory(slug=f"size-{size}", transparency=Transparency.ALL)
        participants = [ParticipantFactory(consortium=consortium, slug=f"p{i}") for i in range(2 + size)]
        for seed in range(size):
            with django_capture_on_commit_callbacks(execute=True):
                valued_run(consortium, participants, seed=seed)
        participant = MembershipFactory(consortium=consortium, role="participant", participant=participants[0]).user
        staff = MembershipFactory(consortium=consortium, role="governance").user
        url = f"/c/{consortium.slug}/contributions/"
        counts[size] = (_queries(client, participant, url), _queries(client, staff, url + "?participant=p1"))
    assert counts[1] == counts[3], counts
    assert max(counts[3]) <= 12, counts


def _many_scored(latest, participants) -> ValuationRun:
    """A run finished after ``latest`` (same training run) with made-up scores of
    ``participants``, ranked in their order."""
    run = ValuationRun.objects.create(
        consortium=latest.consortium, training_run=latest.training_run, rounds=[0, 1], method="tmc", budget=1000,
        seed=1, metric="auc", validation_set=latest.validation_set, chunk_budget=100, input_digest="f" * 64,
        engine_version="1", status="succeeded", finished_at=timezone.now())
    n = len(participants)
    ParticipantScore.objects.bulk_create(
        ParticipantScore(valuation_run=run, participant=p, value=(n - i) / 4, stderr=0.01, ci_low=(n - i) / 4 - 0.02,
                         ci_high=(n - i) / 4 + 0.02, share=None, rank=i + 1, per_round={"0": (n - i) / 8, "1": (n - i) / 8})
        for i, p in enumerate(participants))
    return run


def test_many_participants_are_listed_a_page_at_a_time_in_the_same_queries(client, member, consortium, participants,
                                                                           runs):
    staff = member("finance")
    small = _queries(client, staff, URL)
    more = [ParticipantFactory(consortium=consortium, slug=f"plant-{i:03}") for i in range(57)]
    _many_scored(runs[1], [*participants, *more])
    assert _queries(client, staff, URL) == small
    page = client.get(URL)
    assert len(page.context["table"].page.object_list) == 50 and "Page 1 of 2 · 60 in all" in page.content.decode()
    assert [row["participant"] for row in client.get(URL, {"page": "2"}).context["table"].page.object_list] == [
        f"plant-{i:03}" for i in range(47, 57)]
    everyone = _csv(client.get(URL, {"format": "csv"}))
    assert len(everyone) == 61 and everyone[1][:2] == ["alpha", "1"]
    chooser = client.get(URL, {"participant": "beta"}).content.decode()  # 60 participants to choose from
    assert '<option value="beta" selected>Beta (beta)</option>' in chooser and chooser.count("<option ") == 60


def test_the_participant_chooser_escapes_names_and_keeps_the_choice(client, member, consortium, runs):
    ParticipantFactory(consortium=consortium, slug="evil", name='<b onclick="x()">Evil & Co</b>')
    _, page = _page(client, member("finance"), URL + "?participant=gamma")
    chooser = re.search(r'<select name="participant" id="id_participant">(.*?)</select>', page, re.S).group(1)
    assert '<option value="evil">&lt;b onclick=&quot;x()&quot;&gt;Evil &amp; Co&lt;/b&gt; (evil)</option>' in chooser
    assert '<option value="gamma" selected>Gamma (gamma)</option>' in chooser and chooser.count(" selected") == 1
