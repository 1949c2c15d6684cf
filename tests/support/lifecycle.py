"""Helpers for tests of an account's life (deactivate, reactivate, delete, role): a portal's
user signed in with tokens, and the account's row as the database has it."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import update

from idp import db, directory
from idp.models import User
from tests.support.journey import Browser, query
from tests.support.rp import redeem
from tests.support.signin import start


@dataclass
class PortalSignIn:
    """A browser signed in (its SSO session) and the tokens the portal got for it."""

    browser: Browser
    tokens: dict


def portal_sign_in(app, world, email: str | None = None) -> PortalSignIn:
    """A new browser signs in to the portal with a password (``offline_access``: a refresh
    token too)."""
    browser = Browser(app.test_client())
    verifier, page, _ = start(browser, world, email, scope="openid profile email offline_access")
    assert page.status == 302 and page.location.startswith(world.portal.redirect_uri), page.text[:500]
    r = redeem(browser.http, world, world.portal, query(page.location)["code"], verifier)
    assert r.status_code == 200 and "refresh_token" in r.get_json(), r.get_json()
    return PortalSignIn(browser, r.get_json())


def add_user(app, world, email: str, role: str = "member") -> None:
    """One more user of the tenant, with the world's password."""
    with app.app_context():
        session = db.session()
        directory.create_user(session, app.extensions["idp.passwords"],
                              directory.get_tenant(session, world.slug), email, world.password,
                              role=role)
        session.commit()


def user_row(app, world, email: str) -> User | None:
    with app.app_context():
        session = db.session()
        user = directory.find_user(session, directory.get_tenant(session, world.slug), email)
        if user is not None:
            session.expunge(user)
        return user


def set_status_behind_the_store(app, world, email: str, status: str) -> None:
    """Change the status in the database alone, as a command run without the server's store
    does: sessions and token rows are left as they were."""
    user = user_row(app, world, email)
    with app.app_context():
        session = db.session()
        session.execute(update(User).where(User.id == user.id).values(status=status))
        session.commit()
