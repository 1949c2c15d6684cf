"""Who may use the console, and when an admin action needs a fresh second factor.

Only admins of *this* tenant: no session → sign in; a member → 403; a session of another tenant
presented here → 404 (the console of one tenant never answers another's admins). When the
tenant has MFA on, every console page needs a session that proved, in the last
``CONSOLE_STEP_UP_MINUTES`` (``idp.journey.session``'s one freshness rule), the second step
``idp.policy.console_demand`` asks of this admin (a possession factor where the tenant allows
one, a security question where it allows only those) — so an admin is stepped up before
reaching a form, not after posting it (and sets a factor up first if they have none).
"""

from __future__ import annotations

from flask import abort, g, redirect, request, url_for

from idp import db
from idp.journey import facts
from idp.journey import session as sso
from idp.journey import signin
from idp.login.views import respond
from idp.models import User
from idp.policy import ConsoleDemand, console_demand
from idp import tenant_policy

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


def demand() -> ConsoleDemand:
    """What the console asks of the signed-in admin under the tenant's policy."""
    session = db.session()
    return console_demand(tenant_policy.tenant_policy(session, g.tenant), facts.user_facts(session, g.admin))


def needs_step_up(session) -> bool:
    wanted = demand()
    if wanted.level is None:
        return False
    return not (session.proved_within(sso.CONSOLE_STEP_UP_MINUTES)
                and wanted.met_by(session.acr, session.amr))


def step_up(back_to: str):
    """Prove a second step again (or set one up), then come back to the console."""
    return respond(signin.step_up_for_console(g.admin_session, g.admin, demand().level, back_to))
