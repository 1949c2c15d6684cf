"""The console's policy page: every setting of the tenant's sign-in policy, guard and account
settings, with plain-language help, and a "what happens if…" panel.

Saving goes through ``idp.admin.set_policy`` (which validates and audits with the admin as
actor). The panel reads the same facts the sign-in journey reads and asks
``idp.policy.decide()``; nothing here decides whether MFA is needed.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select

from idp import admin, db, directory, mfa, password_policy, policy, roles
from idp.admin.sign_in_policy import REMEMBER_DAYS, RESET_LINK_MINUTES
from idp.console.views import bp, when
from idp.i18n import SOURCE, html_lang
from idp.directory import DirectoryError
from idp.journey import facts
from idp.journey import session as sso
from idp.models import Client, Group
from idp import tenant_policy

def _factor_choices() -> list[tuple[str, str, str]]:
    """The allowed factors as the form shows them: the name set_policy takes (a type's alias
    where it has one), what admins read, and the help beside it — each factor class's words."""
    return [(f.alias or f.type, f.label, f.policy_help) for f in mfa.ordered()]


def _form_name(type_: str) -> str:
    factor = mfa.get(type_)
    return (factor.alias or factor.type) if factor else type_


def _label(type_: str) -> str:
    factor = mfa.get(type_)
    return str(factor.label) if factor else type_


MODES = (
    ("disabled", _l("Off"), _l("Nobody is asked for a second step and nobody can set one up; everyone "
                        "signs in with a password only.")),
    ("optional", _l("Optional"), _l("People may set up a second step on their account page, and whoever "
                             "has one is asked for it at every sign-in.")),
    ("required", _l("Required"), _l("Everyone the policy covers must set up a second step (after any grace "
                             "period) and is asked for it at every sign-in.")),
)
ROLES = (("admin", _l("Administrators")), ("mfa-admin", _l("Two-factor administrators")),
         ("member", _l("Members")))
SWITCHES = (
    ("self_disable", _l("Users may turn two-step verification off themselves"),
     _l("When off, only an administrator can remove a user's last method.")),
    ("login_token_bypass", _l("Sign-in links skip the second step"),
     _l("A one-time sign-in link an administrator created is enough on its own.")),
    ("admin_login_links", _l("Allow sign-in links for administrators"),
     _l("Risky: whoever holds such a link signs in as that administrator without their password "
     "(and without their second step when sign-in links skip it), and so can use this console "
     "and change anyone's sign-in. Leave it off unless you need it to let an administrator back "
     "in; each time a link is made, its administrator is told by mail.")),
    ("federation_jit", _l("Create accounts on first sign-in through a connected identity provider"),
     _l("When off, an upstream sign-in only works for people who already have an account here.")),
)
GUARD = (
    ("captcha_after", _l("Ask for a CAPTCHA after this many failed attempts"), 1, 100),
    ("lock_after", _l("Lock the account after this many failed attempts"), 1, 100),
    ("lock_minutes", _l("Keep a locked account locked for this many minutes"), 1, 7 * 24 * 60),
)
# The tenant's account settings ("Passwords and accounts").
ACCOUNT_SWITCHES = (
    ("self_service_reset", _l("People may reset a forgotten password by mail"),
     _l("The sign-in page offers a “Forgot your password?” link, which mails a single-use link "
     "to the address of the account. Setting a new password never skips the second step.")),
    ("require_verified_email", _l("Require a verified email address before signing in to a portal"),
     _l("People can sign in here, but no portal receives their sign-in until they have followed "
     "the link mailed to their address.")),
    ("self_registration", _l("People may sign themselves up"),
     _l("The sign-in page offers a sign-up form; a new account works once its address is verified.")),
)
ACCOUNT_NUMBERS = (
    ("password_min_length", _l("Shortest password allowed, in characters"),
     password_policy.MIN_LENGTH, password_policy.LONGEST_MINIMUM),
    ("reset_link_minutes", _l("A reset link works for this many minutes"), *RESET_LINK_MINUTES),
)
# Passkeys: the tenant's two settings (idp/journey/signin.py and the account page apply them).
PASSKEY_SWITCHES = (
    ("passkey_first", _l("Passkeys as the first step"),
     _l("People may sign in with a passkey instead of their email and password. This applies "
     "where passkeys are an allowed method (above); a passkey that checks its owner's "
     "fingerprint, face or PIN counts as two steps on its own.")),
    ("passwordless", _l("Passwordless accounts"),
     _l("People with a passkey may remove their password, while people may reset a forgotten "
     "password by mail (below): a reset link then sets a new one, so an account is never "
     "left with no way in.")),
)
LABELS = {"mode": _l("two-step verification"), "scope": _l("who is covered"), "groups": _l("groups"),
          "users": _l("users"), "grace_until": _l("grace period until"), "grace_skips": _l("grace skips"),
          "factors": _l("allowed methods"), "roles_allowed": _l("roles allowed"),
          "self_disable": _l("users may turn it off"), "login_token_bypass": _l("sign-in links skip it"),
          "admin_login_links": _l("sign-in links for administrators"),
          "federation_jit": _l("accounts created on first upstream sign-in"),
          "captcha_after": _l("CAPTCHA after"), "lock_after": _l("lock after"), "lock_minutes": _l("lock minutes"),
          "lock_email_admins": _l("lockout mail copied to admins"),
          "password_min_length": _l("shortest password"), "self_service_reset": _l("reset by mail"),
          "reset_link_minutes": _l("reset link minutes"),
          "require_verified_email": _l("verified address required"), "self_registration": _l("sign-up"),
          "registration_domains": _l("sign-up domains"), "passkey_first": _l("passkeys as the first step"),
          "passwordless": _l("passwordless accounts"), "remember_days": _l("days a browser is remembered"),
          "remember_scope": _l("browsers remembered for"), "remember_groups": _l("remembered for groups"),
          "remember_roles": _l("roles whose browsers are remembered")}
MAX_USERS = 500  # named users in the scope; more belong in a group
LEVELS = (("", _l("Nothing more (the portal's own minimum only)")),
          ("mfa", _l("Two-factor")),
          ("phr", _l("Phishing-resistant (passkey or security key)")))
# A portal's minimum as the what-if panel names it.
MINIMUMS = {"mfa": _l("two-factor"), "phr": _l("phishing-resistant")}
# Who a policy covers, as the "Saved." summary names it.
SCOPE_WORDS = {"everyone": _l("everyone"), "selected": _l("the chosen groups and people")}


# -- the form ---------------------------------------------------------------------------------

def _form_from_policy(p: dict) -> dict:
    """The form's fields, filled from ``admin.policy_dict``."""
    return {
        "mode": p["mode"], "scope": p["scope"], "groups": list(p["groups"]),
        "users": "\n".join(p["users"]), "grace_days": "",
        "grace_skips": "" if p["grace_skips"] is None else str(p["grace_skips"]),
        "factors": [_form_name(f) for f in p["factors"]], "roles_allowed": list(p["roles_allowed"]),
        **{name: p[name] for name, *_unused in SWITCHES}, "lock_email_admins": p["lock_email_admins"],
        **{name: str(p[name]) for name, *_unused in GUARD}, **_account_fields(p),
        **_passkey_fields(p), **_remember_fields(p),
    }


def _passkey_fields(p: dict) -> dict:
    return {name: p[name] for name, *_unused in PASSKEY_SWITCHES}


def _remember_fields(p: dict) -> dict:
    return {"remember_days": str(p["remember_days"]), "remember_scope": p["remember_scope"],
            "remember_groups": list(p["remember_groups"]),
            "remember_roles": list(p["remember_roles"])}


def _account_fields(p: dict) -> dict:
    return {**{name: p[name] for name, *_unused in ACCOUNT_SWITCHES},
            **{name: str(p[name]) for name, *_unused in ACCOUNT_NUMBERS},
            "registration_domains": "\n".join(p["registration_domains"])}


def _form_from_request(saved: dict) -> dict:
    """The form's fields as typed (to show them again when they cannot be saved). A form from
    a page drawn before the account settings were on it (open in a tab across an upgrade) has
    no "accounts" field: those settings are kept as saved, not read as switched off."""
    f = request.form
    if "accounts" not in f:
        accounts = _account_fields(saved)
    else:
        accounts = {
            **{name: name in f for name, *_unused in ACCOUNT_SWITCHES},
            **{name: f.get(name, "").strip() for name, *_unused in ACCOUNT_NUMBERS},
            "registration_domains": f.get("registration_domains", "")[:20_000],
        }
    # Likewise for the passkey and remember-this-browser settings.
    passkeys = ({name: name in f for name, *_unused in PASSKEY_SWITCHES} if "passkeys" in f
                else _passkey_fields(saved))
    remember = ({"remember_days": f.get("remember_days", "").strip(),
                 "remember_scope": f.get("remember_scope", "everyone"),
                 "remember_groups": f.getlist("remember_groups"),
                 "remember_roles": f.getlist("remember_roles")} if "remembering" in f
                else _remember_fields(saved))
    return {
        **passkeys, **remember,
        "mode": f.get("mode", ""), "scope": f.get("scope", "everyone"),
        "groups": f.getlist("groups"), "users": f.get("users", "")[:50_000],
        "grace_days": f.get("grace_days", "").strip(), "grace_skips": f.get("grace_skips", "").strip(),
        "factors": f.getlist("factors"), "roles_allowed": f.getlist("roles_allowed"),
        **{name: name in f for name, *_unused in SWITCHES}, "lock_email_admins": "lock_email_admins" in f,
        **{name: f.get(name, "").strip() for name, *_unused in GUARD}, **accounts,
    }


def _number(value: str, what: str, blank=None) -> int | None:
    if value == "":
        if blank is not None:
            return blank
        raise DirectoryError(_("Enter a number for “%(what)s”.", what=what))
    if not re.fullmatch(r"-?\d{1,7}", value):
        raise DirectoryError(_("“%(what)s” must be a whole number, not %(value)s.", what=what,
                               value=repr(value[:40])))
    return int(value)


def _changes(form: dict) -> dict:
    """``set_policy``'s keyword arguments from the form, or DirectoryError."""
    if not form["factors"]:
        raise DirectoryError(_("Choose at least one allowed method."))
    kwargs = {"mode": form["mode"], "factors": form["factors"], "roles_allowed": form["roles_allowed"]}
    if form["scope"] == "selected":
        users = [u for u in re.split(r"[\s,;]+", form["users"]) if u]
        if not form["groups"] and not users:
            raise DirectoryError(_("Choose at least one group or user, or let the policy cover everyone."))
        if len(users) > MAX_USERS:
            raise DirectoryError(_("Name at most %(num)d users here; put more people in a group.",
                                   num=MAX_USERS))
        kwargs.update(groups=form["groups"], users=users)
    elif form["scope"] == "everyone":
        kwargs.update(groups=[], users=[])
    else:
        raise DirectoryError(_("Choose who the policy covers: everyone or selected groups and users."))
    if form["grace_days"] != "":
        kwargs["grace_days"] = _number(form["grace_days"], _("grace days"))
    kwargs["grace_skips"] = _number(form["grace_skips"], _("grace skips"), blank=0)
    for name, label, low, high in GUARD + ACCOUNT_NUMBERS:
        kwargs[name] = _number(form[name], label)
        if not low <= kwargs[name] <= high:
            raise DirectoryError(_("“%(what)s” must be from %(low)s to %(high)s.", what=label,
                                   low=low, high=high))
    for name, *_unused in SWITCHES + ACCOUNT_SWITCHES:
        kwargs[name] = form[name]
    # One per line (commas too); a line with a space in it is named whole in the error.
    kwargs["registration_domains"] = [d.strip() for d in re.split(r"[\r\n,;]+", form["registration_domains"])
                                      if d.strip()]
    kwargs["lock_email_admins"] = form["lock_email_admins"]
    for name, *_unused in PASSKEY_SWITCHES:
        kwargs[name] = form[name]
    kwargs.update(_remember_changes(form))
    return kwargs


def _remember_changes(form: dict) -> dict:
    """The remember-this-browser settings as ``set_policy`` takes them, or DirectoryError."""
    label = _("Days a browser is remembered")
    days = _number(form["remember_days"], label, blank=0)
    if not REMEMBER_DAYS[0] <= days <= REMEMBER_DAYS[1]:
        raise DirectoryError(_("“%(what)s” must be from %(low)s to %(high)s (0 turns it off).",
                               what=label, low=REMEMBER_DAYS[0], high=REMEMBER_DAYS[1]))
    changes = {"remember_days": days}
    if form["remember_scope"] == "selected":
        if not form["remember_groups"] and days:
            raise DirectoryError(_("Choose at least one group whose browsers may be remembered, "
                                   "or remember them for everyone."))
        changes["remember_groups"] = form["remember_groups"]
    elif form["remember_scope"] == "everyone":
        changes["remember_groups"] = []
    else:
        raise DirectoryError(_("Choose whose browsers may be remembered: everyone or selected "
                               "groups."))
    if form["remember_roles"]:
        changes["remember_roles"] = form["remember_roles"]
    elif days:
        raise DirectoryError(_("Choose at least one role whose browsers may be remembered, or "
                               "set the days to 0."))
    return changes


def _shown(key: str, value) -> str:
    if key == "registration_domains" and not value:
        return _("any")
    if value is None or value == []:
        return _("none")
    if isinstance(value, bool):
        return _("on") if value else _("off")
    if isinstance(value, list):
        return ", ".join(_label(v) if key == "factors" else
                         roles.label(v) if key in ("roles_allowed", "remember_roles") else str(v)
                         for v in value)
    if key == "grace_until":
        return when(datetime.fromisoformat(str(value)[:10]), "date")
    if key == "mode":
        name = str(next((name for code, name, _help in MODES if code == value), value))
        return name.lower() if html_lang() == SOURCE else name
    if key in ("scope", "remember_scope"):
        return str(SCOPE_WORDS.get(value, value))
    return str(value)


def _summary(before: dict, after: dict) -> str:
    changed = [f"{LABELS.get(k, k)}: {_shown(k, before[k])} → {_shown(k, after[k])}"
               for k in after if k in LABELS and after[k] != before[k]]
    if not changed:
        return _("Saved. Nothing changed.")
    text = _("Saved. %(changes)s.", changes="; ".join(changed))
    added = [_label(f) for f in _knowledge(after["factors"]) if f not in before["factors"]]
    if added:
        text += " " + _("Remember: %(methods)s are knowledge like the password and never count as "
                        "two-factor authentication: a portal that asks for two-factor sign-in "
                        "still asks for another method.",
                        methods=_and(added).lower() if html_lang() == SOURCE else _and(added))
    return text


def _knowledge(types) -> list[str]:
    """Of ``types``, those whose proof stays at level pwd (security questions): allowed, they
    satisfy the policy's second step but never make a sign-in multi-factor."""
    kinds = mfa.kinds()
    strong = kinds.reaching(types, "mfa")
    return [t for t in kinds.ranked(types) if t not in strong]


def _and(words: list[str]) -> str:
    if len(words) == 1:
        return words[0]
    return _("%(first)s and %(last)s", first=", ".join(words[:-1]), last=words[-1])


# -- what the console asks of administrators ---------------------------------------------------

def _console_demand(session, row=None) -> policy.ConsoleDemand:
    """What the console asks of the signed-in admin under the saved policy (or ``row``)."""
    row = row if row is not None else admin.policy_row(session, g.tenant)
    return policy.console_demand(tenant_policy.policy_from_row(row), facts.user_facts(session, g.admin))


# What the console asks of administrators, as the policy page says it.
CONSOLE_ASKS = {"mfa": _l("a second factor, such as an authenticator app or a passkey"),
                "pwd": _l("an answer to one of their security questions"),
                None: _l("their password only")}


def _weakens_console(before: policy.ConsoleDemand, after: policy.ConsoleDemand) -> bool:
    order = (None, "pwd", "mfa")
    return order.index(after.level) < order.index(before.level)


# -- the "what happens if…" panel -------------------------------------------------------------

def _what_if(session) -> tuple[dict, dict | None, str | None]:
    """(the panel's typed values, its answer or None, an error message or None)."""
    asked = {"email": request.args.get("email", "").strip()[:320],
             "portal": request.args.get("portal", ""), "acr": request.args.get("acr", "")}
    if "email" not in request.args:
        return asked, None, None
    if not asked["email"]:
        return asked, None, _("Enter the email of a user of this organisation.")
    user = directory.find_user(session, g.tenant, asked["email"])
    if user is None:
        return asked, None, _("There is no user %(email)s in this organisation.", email=asked["email"])
    client = None
    if asked["portal"]:
        client = session.scalar(select(Client).where(Client.tenant_id == g.tenant.id,
                                                     Client.client_id == asked["portal"]))
        if client is None:
            return asked, None, _("There is no such portal in this organisation.")
    if asked["acr"] not in dict(LEVELS):
        return asked, None, _("Choose one of the listed strengths.")
    # Exactly what the sign-in journey reads, for a fresh password sign-in.
    rules = tenant_policy.tenant_policy(session, g.tenant)
    user_facts = facts.user_facts(session, user)
    requirements = facts.requirements({"acr_values": asked["acr"]}, client)
    decision = policy.decide(rules, user_facts, requirements, policy.Progress(),
                             datetime.now(timezone.utc))
    return asked, {"decision": decision, "user": user, "client": client, "facts": user_facts}, None


# -- the page ---------------------------------------------------------------------------------

def _render(form: dict, status: int = 200, error: str | None = None,
            console_warning: policy.ConsoleDemand | None = None):
    session = db.session()
    asked, answer, whatif_error = _what_if(session)
    groups = session.scalars(select(Group.name).where(Group.tenant_id == g.tenant.id)
                             .order_by(Group.name).limit(1000)).all()
    clients = session.execute(select(Client.client_id, Client.name, Client.min_acr)
                              .where(Client.tenant_id == g.tenant.id)
                              .order_by(Client.name, Client.id).limit(1000)).all()
    current = admin.policy_dict(session, g.tenant)
    if whatif_error and status == 200:
        status = 400
    return render_template(
        "console/policy.html", form=form, error=error, current=current,
        group_names=list(dict.fromkeys([*groups, *form["groups"], *form["remember_groups"]])),
        clients=clients, modes=MODES, factors=_factor_choices(), roles=ROLES, switches=SWITCHES,
        guard=GUARD, account_switches={n: (label, help) for n, label, help in ACCOUNT_SWITCHES},
        passkey_switches=PASSKEY_SWITCHES, remember_days=REMEMBER_DAYS,
        account_numbers={n: (label, low, high) for n, label, low, high in ACCOUNT_NUMBERS},
        levels=LEVELS, minimums=MINIMUMS, factor_label=_label, asked=asked, answer=answer,
        knowledge=[_label(f) for f in _knowledge(current["factors"])],
        knowledge_named=_and([_label(f) for f in _knowledge(current["factors"])] or [""]),
        whatif_error=whatif_error, Need=policy.Need, console=_console_demand(session),
        console_warning=console_warning, console_asks=CONSOLE_ASKS,
        step_up_minutes=sso.CONSOLE_STEP_UP_MINUTES,
        groups_link=Markup('<a href="%s">%s</a>') % (url_for("console.groups", tenant=g.tenant.slug),
                                                    _("Groups")),
        grace_until=_grace_until(current.get("grace_until")),
    ), status


def _grace_until(value) -> str:
    """The grace period's end date as the page's language writes it."""
    if not value:
        return ""
    try:
        return when(datetime.fromisoformat(str(value)[:10]), "date")
    except ValueError:
        return str(value)[:10]


@bp.route("/policy", methods=("GET", "POST"), endpoint="policy")
def policy_page():
    session = db.session()
    if request.method == "GET":
        return _render(_form_from_policy(admin.policy_dict(session, g.tenant)))
    before = admin.policy_dict(session, g.tenant)
    form = _form_from_request(before)
    console_before = _console_demand(session)
    try:
        after = admin.set_policy(session, g.tenant, g.admin.email, **_changes(form))
    except DirectoryError as e:
        session.rollback()  # set_policy may have changed some settings before it refused
        return _render(form, 400, str(e))
    console_after = _console_demand(session)
    if _weakens_console(console_before, console_after) and not request.form.get("console_ok"):
        # Said before it is saved: the console would ask administrators for less than today.
        session.rollback()
        return _render(form, 200, console_warning=console_after)
    flash(_summary(before, after))
    return redirect(url_for("console.policy", tenant=g.tenant.slug))
