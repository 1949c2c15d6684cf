"""Who may use the console, and when an admin action needs a fresh second factor.

Only admins of *this* tenant: no session → sign in; a member → 403; a session of another tenant
presented here → 404 (the console of one tenant never answers another's admins). When the
tenant has MFA on, an action (any POST) needs a session that proved a second factor in the last
``STEP_UP_MINUTES`` — checked on every console page, so an admin is stepped up before reaching
a form, not after posting it (and sets a factor up first if they have none).
"""

from __future__ import annotations

import time

from flask import abort, g, redirect, request, url_for

from idp import db
from idp.login import facts
from idp.login import session as sso
from idp.login import transaction
from idp.models import User
from idp.oidc.claims import level_at_least
from idp.policy import Mode

STEP_UP_MINUTES = 15


def require_admin():
    """before_request of the console blueprint."""
    session = sso.current(g.tenant.id)
    if session is None:
        if sso.belongs_elsewhere(g.tenant.id):
            abort(404, description="There is no such page here.")
        return redirect(url_for("login.login", tenant=g.tenant.slug,
                                next=request.path if request.method == "GET" else None))
    user = db.session().get(User, session.user_id)
    if user is None or user.tenant_id != g.tenant.id:
        abort(404, description="There is no such page here.")
    if user.role != "admin":
        abort(403, description="Only administrators of this organisation can open the console.")
    g.admin, g.admin_session = user, session
    if needs_step_up(session):
        back = request.path if request.method == "GET" else url_for("console.users", tenant=g.tenant.slug)
        return step_up(back)
    return None


def needs_step_up(session) -> bool:
    if facts.tenant_policy(db.session(), g.tenant).mode is Mode.DISABLED:
        return False
    fresh = time.time() - (session.stepped_at or session.auth_time) <= STEP_UP_MINUTES * 60
    return not (fresh and level_at_least(session.acr, "mfa"))


def step_up(back_to: str):
    """Prove a second factor again (or set one up), then come back to the console."""
    from idp.login.views import next_step, step_up_of  # the journey's pages import the console's gate

    # The methods this session performed and how it began, as they were (a login link is no
    # password).
    tx = step_up_of(g.admin_session, transaction.begin(g.tenant.id, {}, next_url=back_to))
    tx.notes["min_acr"] = "mfa"
    return next_step(tx, g.admin)
