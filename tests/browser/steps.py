"""Steps every browser journey takes: signing in, and collecting Content-Security-Policy
violations from the console (a journey asserts there were none)."""

PASSWORD = "correct horse battery staple"  # the factories' password for every user


def sign_in(page, base_url: str, username: str, password: str = PASSWORD) -> None:
    page.goto(f"{base_url}/login/")
    page.get_by_label("Email").fill(username)
    page.get_by_label("Password").fill(password)
    page.get_by_role("button", name="Sign in").click()


def csp_violations(page, violations: list[str] | None = None) -> list[str]:
    """A list (``violations``, or a new one) that fills with the Content-Security-Policy
    messages of ``page``'s console."""
    violations = [] if violations is None else violations
    page.on("console", lambda message: violations.append(message.text)
            if "Content Security Policy" in message.text else None)
    return violations
