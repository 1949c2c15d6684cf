"""Authenticator apps (TOTP) as a user sets them up: the setup key read from the account
page, codes made from it with pyotp at the real time; or, where a test only needs one to exist,
the row an enrollment leaves (the seed encrypted, a handle)."""

from __future__ import annotations

import re
import secrets
import time

import pyotp

from idp import db, directory
from idp.mfa.secrets import SecretBox
from idp.models import Authenticator
from tests.support.account import password_sign_in, start_enrollment, submit_enrollment
from tests.support.journey import Browser

TOTP_KEY = re.compile(r'id="totp-setup-key"[^>]*>([A-Z2-7 ]+)<')


def totp_code(secret: str, steps_ahead: int = 0) -> str:
    """The app's code now, or ``steps_ahead`` 30-second steps later."""
    return pyotp.TOTP(secret).at(time.time() + 30 * steps_ahead)


def enroll_totp(browser: Browser, world, name: str | None = None, email: str | None = None) -> str:
    """A password sign-in, then an authenticator app added on the account page; its secret."""
    password_sign_in(browser, world, email)
    return enroll_another(browser, world, name)


def enroll_another(browser: Browser, world, name: str | None = None) -> str:
    """One more app, added by a browser already signed in to the account page; its secret."""
    page = start_enrollment(browser, world, "totp")
    secret = TOTP_KEY.search(page.text).group(1).replace(" ", "")
    fields = {"code": totp_code(secret)} | ({"name": name} if name is not None else {})
    done = submit_enrollment(browser, world, "totp", page, **fields)
    assert done.status == 302 and done.location.endswith(f"/t/{world.slug}/account"), done.text[:500]
    return secret


def with_totp(app, world, email: str | None = None) -> str:
    """Alice (or ``email``) sets up an authenticator app (what Totp stores: the seed
    encrypted, a handle)."""
    seed = pyotp.random_base32(32)
    with app.app_context():
        session = db.session()
        alice = directory.find_user(session, directory.get_tenant(session, world.slug),
                                    email or world.alice)
        session.add(Authenticator(
            tenant_id=alice.tenant_id, user_id=alice.id, type="totp", name="Authenticator app",
            data={"secret": SecretBox(app.config["IDP"].secret_key).encrypt(seed),
                  "handle": secrets.token_urlsafe(12)}))
        session.commit()
    return seed
