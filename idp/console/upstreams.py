"""The console's identity providers (upstreams): list them, and edit how far each is trusted.

An upstream is added with ``idp upstream add`` (its client secret and discovery are set up
once, by whoever registers us there); what follows is the tenant's to decide and is edited
here: its name, its email domains and whether it vouches for them, account creation, and
whether its second factor counts. Saving goes through ``idp.admin.update_upstream``, which
checks everything before it changes anything and audits with the admin as actor.
"""

from __future__ import annotations

import re

from flask import abort, flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _, lazy_gettext as _l
from sqlalchemy import select

from idp import admin, db
from idp.console.views import bp
from idp.directory import DirectoryError, NotFound
from idp.federation.client import callback_url
from idp.federation.linking import creates_accounts
from idp.journey.upstream_trust import TRUST_MFA
from idp.models import TenantPolicyRow, Upstream

MAX_LINES = 100  # domains or acr values in one textarea
JIT_CHOICES = (  # the form's value, the stored setting, what admins read
    ("tenant", None, _l("As the sign-in policy says")),
    ("on", True, _l("Create an account for people who have none yet")),
    ("off", False, _l("Only let in people who already have an account here")),
)
TRUST_CHOICES = {
    "never": _l("Always ask for this organisation's own second step when the policy does"),
    "when_upstream_mfa": _l("Skip our second step when %(name)s says it checked a second factor"),
    "always": _l("Never ask for our second step after %(name)s: its own sign-in policy is enough"),
}
TRUST_LABELS = {"never": _l("Not counted"), "when_upstream_mfa": _l("Counts when it says so"),
                "always": _l("Always enough")}


def _upstream(slug: str) -> Upstream:
    try:
        return admin.find_upstream(db.session(), g.tenant, slug[:63])
    except NotFound:
        abort(404, description=_("There is no such identity provider in this organisation."))


def _tenant_jit() -> bool:
    row = db.session().get(TenantPolicyRow, g.tenant.id)
    return bool(row and row.federation_jit)


def _lines(field: str, what: str) -> list[str]:
    values = [v for v in re.split(r"[\s,]+", request.form.get(field, "")[:20_000]) if v]
    if len(values) > MAX_LINES:
        raise DirectoryError(_("List at most %(num)d %(what)s.", num=MAX_LINES, what=what))
    return values


@bp.get("/upstreams", endpoint="upstreams")
def upstreams_list():
    session = db.session()
    policy_row = session.get(TenantPolicyRow, g.tenant.id)
    rows = session.scalars(select(Upstream).where(Upstream.tenant_id == g.tenant.id)
                           .order_by(Upstream.name, Upstream.id).limit(1000)).all()
    return render_template("console/upstreams.html", trust_labels=TRUST_LABELS, upstreams=[
        (u, creates_accounts(u, policy_row)) for u in rows])


def _render(upstream: Upstream, form: dict | None = None, status: int = 200,
            error: str | None = None):
    form = form or {
        "name": upstream.name, "email_domains": "\n".join(upstream.email_domains),
        "email_authoritative": upstream.email_authoritative,
        "jit": next(value for value, stored, _label in JIT_CHOICES if stored == upstream.jit),
        "trust_mfa": upstream.trust_mfa, "trusted_acrs": "\n".join(upstream.trusted_acrs),
    }
    return render_template(
        "console/upstream.html", upstream=upstream, form=form, error=error,
        tenant_jit=_tenant_jit(), jit_choices=JIT_CHOICES,
        trust_choices={k: v % {"name": upstream.name} for k, v in TRUST_CHOICES.items()},
        callback=callback_url(upstream)), status


@bp.get("/upstreams/<slug>")
def upstream(slug):
    return _render(_upstream(slug))


@bp.post("/upstreams/<slug>")
def upstream_update(slug):
    row = _upstream(slug)
    f = request.form
    form = {"name": f.get("name", "")[:200], "email_domains": f.get("email_domains", "")[:20_000],
            "email_authoritative": f.get("email_authoritative") == "on",
            "jit": f.get("jit", ""), "trust_mfa": f.get("trust_mfa", ""),
            "trusted_acrs": f.get("trusted_acrs", "")[:20_000]}
    jit = {value: stored for value, stored, _label in JIT_CHOICES}
    try:
        if form["jit"] not in jit:
            raise DirectoryError(_("Choose whether accounts are created on first sign-in."))
        if form["trust_mfa"] not in TRUST_MFA:
            raise DirectoryError(_("Choose whether its second factor counts."))
        acrs = _lines("trusted_acrs", _("sign-in levels"))
        if acrs and form["trust_mfa"] == "never":
            raise DirectoryError(_("Sign-in levels only count when its second factor may count: "
                                   "choose one of the other two options, or remove the levels."))
        admin.update_upstream(db.session(), g.tenant, row.slug, g.admin.email,
                              name=form["name"], email_domains=_lines("email_domains", _("domains")),
                              email_authoritative=form["email_authoritative"],
                              jit=jit[form["jit"]], trust_mfa=form["trust_mfa"],
                              trusted_acrs=acrs)
    except DirectoryError as e:  # update_upstream checks everything before it changes anything
        return _render(row, form, 400, _sentence(str(e)))
    flash(_("%(name)s is saved. Changes apply from the next sign-in with it.", name=row.name))
    return redirect(url_for("console.upstream", tenant=g.tenant.slug, slug=row.slug))


def _sentence(message: str) -> str:
    return message[:1].upper() + message[1:] + ("" if message.endswith(".") else ".")
