"""The pages in a real browser: sign in, find the consortium, create and revoke an API key."""

import pytest
from playwright.sync_api import expect

from tests.browser.steps import csp_violations, sign_in
from tests.factories import MembershipFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]




def test_finance_signs_in_and_manages_an_api_key(page, live_server):
    membership = MembershipFactory(user=UserFactory(username="finance@acme.test"), role="finance",
                                   consortium__slug="acme", consortium__name="Acme Consortium")
    sign_in(page, live_server.url, membership.user.username)
    expect(page.get_by_role("heading", name="Your consortia")).to_be_visible()

    page.get_by_role("link", name="Acme Consortium").click()
    page.get_by_role("link", name="API keys").click()
    page.get_by_label("Name").fill("coordinator")
    page.get_by_label("Ingest training runs, rounds and updates").check()
    page.get_by_role("button", name="Create key").click()

    secret = page.get_by_test_id("new-api-key")
    expect(secret).to_contain_text("fsk_")
    raw_key = secret.inner_text().strip()
    page.goto(page.url)  # a fresh GET: the secret is not shown again
    expect(page.get_by_test_id("new-api-key")).to_have_count(0)
    assert raw_key not in page.content()

    page.get_by_role("button", name="Revoke").click()
    expect(page.get_by_text("revoked", exact=False).first).to_be_visible()


def test_a_wrong_password_keeps_the_visitor_on_the_sign_in_page(page, live_server, db):
    UserFactory(username="someone@acme.test")
    page.goto(f"{live_server.url}/login/")
    page.get_by_label("Email").fill("someone@acme.test")
    page.get_by_label("Password").fill("wrong")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_text("Please enter a correct")).to_be_visible()


def test_pages_and_the_api_docs_run_under_the_content_security_policy(page, live_server):
    membership = MembershipFactory(user=UserFactory(username="auditor@acme.test"), role="auditor",
                                   consortium__slug="acme", consortium__name="Acme Consortium")
    violations = csp_violations(page)
    response = page.goto(f"{live_server.url}/login/")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    sign_in(page, live_server.url, membership.user.username)
    for path in ("/", "/c/acme/", "/c/acme/audit/", "/c/acme/api-keys/"):
        page.goto(f"{live_server.url}{path}")
    page.goto(f"{live_server.url}/api/v1/docs/")
    expect(page.get_by_text("Fairshare API").first).to_be_visible()  # Swagger UI rendered from its own script
    assert violations == []
