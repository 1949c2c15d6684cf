"""The hosted sign-in page: one message for every failure, CSRF, cookies, headers, sign-out."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import select

from idp import db
from idp.models import AuditEvent, User
from tests.support.captcha import solve
from tests.support.journey import CSRF, TX, field
from tests.support.world import make_world


def login_page(client, slug):
    r = client.get(f"/t/{slug}/login")
    assert r.status_code == 200
    return r.get_data(as_text=True)


def post_login(client, slug, email, password, csrf=None):
    page = login_page(client, slug)
    token = csrf if csrf is not None else field(CSRF, page)
    return client.post(f"/t/{slug}/login", data={"csrf_token": token, "email": email,
                                                 "password": password, "tx": field(TX, page)})


def test_the_form_asks_browsers_to_fill_it_properly(client, world):
    html = login_page(client, world.slug)
    # "webauthn": the browser offers this site's passkeys in the field's autofill too.
    assert re.search(r'<input[^>]*autocomplete="username webauthn"[^>]*name="email"', html)
    assert re.search(r'<input[^>]*autocomplete="current-password"[^>]*name="password"', html)


def test_unknown_email_and_wrong_password_get_the_same_answer(client, world):
    wrong = post_login(client, world.slug, world.alice, "not the password")
    unknown = post_login(client, world.slug, "nobody@example.com", "not the password")
    assert wrong.status_code == unknown.status_code == 200
    # Values, the sign-in's id in links and the passkey request's challenge differ per request
    # (each is made afresh each time).
    strip = lambda r: re.sub(r'value="[^"]*"|tx=[^"&]*|"challenge": "[^"]*"', "",
                             r.get_data(as_text=True))
    assert "Incorrect email or password." in strip(wrong)
    assert strip(wrong).replace(world.alice, "E") == strip(unknown).replace("nobody@example.com", "E")
    assert "idp_sso" not in wrong.headers.get("Set-Cookie", "")


def test_email_is_matched_whatever_its_case_and_spacing(client, world):
    r = post_login(client, world.slug, "  ALICE@example.COM ", world.password)
    assert r.status_code == 302


def test_a_post_without_csrf_token_is_refused(client, world):
    r = post_login(client, world.slug, world.alice, world.password, csrf="")
    assert r.status_code == 400
    assert "idp_sso" not in r.headers.get("Set-Cookie", "")


def test_sso_cookie_is_httponly_lax_and_scoped_to_the_tenant(client, world):
    r = post_login(client, world.slug, world.alice, world.password)
    cookie = next(c for c in r.headers.getlist("Set-Cookie") if c.startswith("idp_sso="))
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie
    assert f"Path=/t/{world.slug}/" in cookie
    assert "Secure" not in cookie  # http base URL here; see the https test below


def test_sso_cookie_is_secure_on_https(app, settings, world):
    from dataclasses import replace

    from idp import create_app

    https_app = create_app(replace(settings, base_url="https://idp.test"), TESTING=True)
    c = https_app.test_client()
    r = post_login(c, world.slug, world.alice, world.password)
    cookie = next(x for x in r.headers.getlist("Set-Cookie") if x.startswith("idp_sso="))
    assert "Secure" in cookie
    assert r.headers["Strict-Transport-Security"].startswith("max-age=")
    https_app.extensions["idp.engine"].dispose()


def test_a_new_sign_in_gets_a_new_session_id(client, world):
    first = post_login(client, world.slug, world.alice, world.password)
    second = post_login(client, world.slug, world.alice, world.password)
    sid = lambda r: re.search(r"idp_sso=([^;]+)", r.headers["Set-Cookie"]).group(1)
    assert sid(first) != sid(second)


def test_hosted_pages_send_security_headers(client, world):
    r = client.get(f"/t/{world.slug}/login")
    csp = r.headers["Content-Security-Policy"]
    assert "frame-ancestors 'none'" in csp and "form-action" not in csp
    assert r.headers["X-Frame-Options"] == "DENY"
    assert r.headers["X-Content-Type-Options"] == "nosniff"
    assert r.headers["Cache-Control"] == "no-store"


def test_sign_in_and_failure_are_audited(app, client, world):
    post_login(client, world.slug, world.alice, "wrong password")
    post_login(client, world.slug, world.alice, world.password)
    with app.app_context():
        session = db.session()
        user = session.scalar(select(User).where(User.email == world.alice, User.tenant.has(slug=world.slug)))
        actions = session.scalars(select(AuditEvent.action).where(AuditEvent.user_id == user.id)).all()
    assert "user.sign_in_failed" in actions and "user.signed_in" in actions


def test_home_shows_who_is_signed_in_and_sign_out_ends_it(client, world):
    post_login(client, world.slug, world.alice, world.password)
    home = client.get(f"/t/{world.slug}/").get_data(as_text=True)
    assert world.alice in home
    r = client.post(f"/t/{world.slug}/signout", data={"csrf_token": field(CSRF, home)})
    assert r.status_code == 200 and "signed out" in r.get_data(as_text=True)
    assert world.alice not in client.get(f"/t/{world.slug}/").get_data(as_text=True)


def test_a_session_of_one_tenant_means_nothing_in_another(app, settings, client, world):
    other = make_world(app, settings)
    post_login(client, world.slug, world.alice, world.password)
    assert world.alice not in client.get(f"/t/{other.slug}/").get_data(as_text=True)


def test_rehash_on_login_when_parameters_change(app, settings, world):
    from dataclasses import replace

    from idp import create_app

    stronger = create_app(replace(settings, argon2_time_cost=3), TESTING=True)
    r = post_login(stronger.test_client(), world.slug, world.alice, world.password)
    assert r.status_code == 302
    with app.app_context():
        user = db.session().scalar(select(User).where(User.email == world.alice, User.tenant.has(slug=world.slug)))
        assert ",t=3," in user.password_hash
    stronger.extensions["idp.engine"].dispose()


@pytest.mark.parametrize("who", ["known", "unknown"])
def test_five_wrong_passwords_lock_known_and_unknown_accounts_alike(client, world, who):
    email = world.alice if who == "known" else "nobody@example.com"
    statuses, last = [], ""
    for attempt in range(5):
        page = login_page(client, world.slug)
        data = {"csrf_token": field(CSRF, page), "tx": field(TX, page), "email": email,
                "password": "wrong password"}
        if attempt >= 3:  # past the CAPTCHA threshold: solve the one the last answer showed
            data["altcha"] = solve(last)
        r = client.post(f"/t/{world.slug}/login", data=data)
        last = r.get_data(as_text=True)
        statuses.append(r.status_code)
    assert statuses == [200, 200, 200, 200, 429]
    locked = post_login(client, world.slug, email, world.password if who == "known" else "x" * 12)
    assert locked.status_code == 429 and "locked" in locked.get_data(as_text=True)
