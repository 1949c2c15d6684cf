"""Who may use the console, which of its pages, and when an admin action needs a fresh second
factor.

Only admins of *this* tenant: no session → sign in; a member → 403; a session of another tenant
presented here → 404 (the console of one tenant never answers another's admins). A two-factor
administrator (``idp.roles``) opens only ``MFA_ADMIN_PAGES`` (every other page is a 403 that
says why, and the navigation does not offer it); which actions they may take on whom is
``roles.may_act``'s, asked by each action. A deactivated or deleted admin has no session
(``sso.signed_in``). When the
tenant has MFA on, every console page needs a session that proved, in the last
``CONSOLE_STEP_UP_MINUTES`` (``idp.journey.session``'s one freshness rule), the second step
``idp.policy.console_demand`` asks of this admin (a possession factor where the tenant allows
one, a security question where it allows only those) — so an admin is stepped up before
reaching a form, not after posting it (and sets a factor up first if they have none).
"""

from __future__ import annotations

from flask import abort, g, redirect, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l

from idp import db, roles
from idp.journey import facts
from idp.journey import session as sso
from idp.journey import signin
from idp.login.views import respond
from idp.policy import ConsoleDemand, console_demand
from idp import tenant_policy

STEP_UP_MINUTES = 15


# The pages a two-factor administrator may open: the people, their two-step verification and
# locks (the actions themselves are checked one by one), and the MFA report. A page added later
# is the administrators' alone until it is listed here.
MFA_ADMIN_PAGES = frozenset({"console.home", "console.users", "console.user", "console.act",
                             "console.report", "console.report_csv"})

NOT_FOR_YOUR_ROLE = _l("Your role lets you manage people's two-step verification and unlock "
                     "their accounts, and nothing else here. Ask an administrator of this "
                     "organisation if you need this page.")


def may_open(role: str, endpoint: str | None) -> bool:
    """May a console user of ``role`` open the page ``endpoint``?"""
    if role == roles.ADMIN:
        return True
    return role == roles.MFA_ADMIN and endpoint in MFA_ADMIN_PAGES


def require_admin():
    """before_request of the console blueprint."""
    session, user = sso.signed_in(g.tenant.id)
    if session is None:
        if sso.belongs_elsewhere(g.tenant.id):
            abort(404, description=_("There is no such page here."))
        return redirect(url_for("login.login", tenant=g.tenant.slug,
                                next=request.path if request.method == "GET" else None))
    if user.role not in roles.CONSOLE:
        abort(403, description=_("Only administrators of this organisation can open the console."))
    if not may_open(user.role, request.endpoint):
        abort(403, description=str(NOT_FOR_YOUR_ROLE))
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
