"""Password attempts at the hosted login page as a browser makes them, and what the page
answered."""

from __future__ import annotations

from tests.support.journey import CSRF, TX, Browser, Page, field


def try_password(browser: Browser, world, email: str, password: str,
                 captcha: str | None = None) -> Page:
    """One attempt from a fresh login page (``captcha``: the widget's solution, if any)."""
    page = browser.get(f"/t/{world.slug}/login")
    form = {"csrf_token": field(CSRF, page.text), "tx": field(TX, page.text),
            "email": email, "password": password}
    if captcha is not None:
        form["altcha"] = captcha
    return browser.post(f"/t/{world.slug}/login", form)


def answer(page: Page) -> str:
    """What the person at the keyboard learnt: signed in, locked, asked for the CAPTCHA, or told
    the email or password was wrong."""
    if page.status in (302, 303):
        return "signed in"
    if page.status == 503:
        return "busy"  # asked to retry before anything was counted (idp.password)
    if "Account temporarily locked" in page.text:
        return "locked"
    if "Complete the check below" in page.text:
        return "captcha"
    if "Incorrect email or password" in page.text:
        return "incorrect"
    return f"{page.status}: {page.text[:300]}"
