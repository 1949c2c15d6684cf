"""Links mailed to a user (reset, invitation, verification), read from the outbox (the embedded
default's delivery), and the pages they open."""

from __future__ import annotations

import re

from sqlalchemy import select

from idp import db, directory
from idp.models import OutboxMessage
from tests.support.journey import CSRF, TX, Browser, Page, field


def mailed_paths(app, world, to: str, kind: str) -> list[str]:
    """The paths of the links in the ``kind`` mails of ``world``'s tenant to ``to``, oldest
    first (mails that keep no text, decoys, have none)."""
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        bodies = db.session().scalars(select(OutboxMessage.body).where(
            OutboxMessage.tenant_id == tenant.id, OutboxMessage.recipient == to,
            OutboxMessage.kind == kind).order_by(OutboxMessage.id)).all()
    found = [re.search(r"https?://[^/\s]+(/t/\S+)", body) for body in bodies]
    return [m.group(1) for m in found if m]


def set_new_password(browser: Browser, path: str, password: str, again: str | None = None) -> Page:
    """Open a link's page and post a new password (twice, or ``again`` the second time)."""
    page = browser.get(path)
    assert page.status == 200, page.text[:300]
    return browser.post(path, {"csrf_token": field(CSRF, page.text), "password": password,
                               "confirm": password if again is None else again})


def password_sign_in_answer(app, world, email: str, password: str) -> Page:
    """A new browser's password sign-in on the tenant's own page: what it answers."""
    browser = Browser(app.test_client())
    page = browser.get(f"/t/{world.slug}/login")
    return browser.post(f"/t/{world.slug}/login", {
        "csrf_token": field(CSRF, page.text), "tx": field(TX, page.text), "email": email,
        "password": password})
