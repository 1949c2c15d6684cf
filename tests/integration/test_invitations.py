"""Invitations: an admin adds a user by mail; the invitee chooses a password through the policy
and meets the tenant's MFA policy at once. Links are read from the outbox."""

from __future__ import annotations

import json

from sqlalchemy import select

from idp import db, directory
from idp.models import AuditEvent, User
from tests.support.journey import CSRF, Browser, field
from tests.support.mailed_links import mailed_paths, password_sign_in_answer, set_new_password
from tests.support.signin import set_policy

CAROL = "carol.new@example.com"
CHOSEN = "quiet harbour lights at dusk"


def invite(idp, world, email=CAROL, *extra):
    code, out, err = idp("user", "invite", world.slug, email, "--name", "Carol New",
                         "--group", "Finance", *extra)
    assert code == 0, err
    return json.loads(out)


def invitation_paths(app, world, to=CAROL) -> list[str]:
    return mailed_paths(app, world, to, "invite")


def user(app, world, email=CAROL) -> User | None:
    with app.app_context():
        found = directory.find_user(db.session(), directory.get_tenant(db.session(), world.slug), email)
        if found is not None:
            found.group_names = [g.name for g in found.groups]
        db.session().expunge_all()
        return found


def accept(browser: Browser, path: str, password: str, again: str | None = None):
    assert "Choose a password" in browser.get(path).text
    return set_new_password(browser, path, password, again)


def signs_in(app, world, email, password):
    return password_sign_in_answer(app, world, email, password)


def test_an_invitee_sets_a_password_and_meets_the_forced_setup(app, world, idp):
    set_policy(app, world, mode="required", groups=[], users=[])
    done = invite(idp, world)
    assert done["status"] == "invited" and done["groups"] == ["Finance"] and not done["resent"]
    carol = user(app, world)
    assert carol.status == "invited" and carol.password_hash is None and not carol.email_verified
    # Until accepted, no way in: no password, and a reset by mail answers with a decoy.
    assert signs_in(app, world, CAROL, CHOSEN).status == 200

    [path] = invitation_paths(app, world)
    browser = Browser(app.test_client())
    assert browser.get(path).status == 200 and user(app, world).status == "invited"  # nothing spent
    refused = accept(browser, path, "password123")
    assert refused.status == 400 and "too common" in refused.text
    after = accept(browser, path, CHOSEN)
    # The policy requires a second factor: straight on to setting one up.
    assert after.status == 302 and "/login/setup" in after.location, (after.status, after.location)
    carol = user(app, world)
    assert carol.status == "active" and carol.email_verified and carol.group_names == ["Finance"]
    assert browser.get(path).status == 400  # used


def test_resending_voids_the_first_link_and_revoking_removes_the_account(app, world, idp):
    invite(idp, world)
    assert invite(idp, world)["resent"] is True
    first, second = invitation_paths(app, world)
    assert Browser(app.test_client()).get(first).status == 400
    assert Browser(app.test_client()).get(second).status == 200
    with app.app_context():
        from idp.admin import invitations

        session = db.session()
        invitations.revoke(session, directory.get_tenant(session, world.slug), CAROL, "test")
        session.commit()
    assert user(app, world) is None
    assert Browser(app.test_client()).get(second).status == 400
    with app.app_context():
        actions = db.session().scalars(select(AuditEvent.action).where(
            AuditEvent.action.in_(["user.invited", "user.invitation_revoked"]))
            .order_by(AuditEvent.id.desc()).limit(3)).all()
    assert actions == ["user.invitation_revoked", "user.invited", "user.invited"]


def test_an_existing_account_cannot_be_invited(idp, world):
    code, _, err = idp("user", "invite", world.slug, world.bob)
    assert code == 1 and "already has an account" in err and len(err.strip().splitlines()) == 1


def test_the_same_link_posted_twice_accepts_once(app, world, idp):
    invite(idp, world)
    [path] = invitation_paths(app, world)
    browser = Browser(app.test_client())
    page = browser.get(path)
    form = {"csrf_token": field(CSRF, page.text), "password": CHOSEN, "confirm": CHOSEN}
    assert browser.post(path, form).status == 302
    second = browser.post(path, form)
    assert second.status == 400 and "does not work" in second.text
    assert signs_in(app, world, CAROL, CHOSEN).status == 302
