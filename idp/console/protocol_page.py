"""The console's Portal security page (administrators only): what the tenant asks of its
portals beyond the defaults — pushed authorization requests, DPoP nonces, the hosts
self-registered portals may send people to. Checks and changes are ``idp.admin.protocol``'s;
a refusal is shown under its field, with what was typed kept."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _

from idp import db
from idp.admin import protocol as protocol_admin
from idp.console.views import bp


def _saved() -> dict:
    saved = protocol_admin.settings(db.session(), g.tenant.id)
    return {"require_par": saved.require_par, "dpop_nonce_required": saved.dpop_nonce_required,
            "registration_redirect_hosts": "\n".join(saved.registration_redirect_hosts)}


def _render(status: int = 200, form: dict | None = None, errors: dict | None = None):
    return render_template("console/protocol.html", form=form or _saved(), errors=errors or {},
                           max_hosts=protocol_admin.MAX_REDIRECT_HOSTS), status


@bp.get("/portal-security", endpoint="protocol")
def protocol_page():
    return _render()


@bp.post("/portal-security")
def protocol_save():
    form = {"require_par": request.form.get("require_par") == "on",
            "dpop_nonce_required": request.form.get("dpop_nonce_required") == "on",
            "registration_redirect_hosts": request.form.get("registration_redirect_hosts",
                                                            "")[:20_000]}
    try:
        protocol_admin.update(db.session(), g.tenant.id, g.admin.email,
                              require_par=form["require_par"],
                              dpop_nonce_required=form["dpop_nonce_required"],
                              registration_redirect_hosts=form["registration_redirect_hosts"]
                              .splitlines())
    except protocol_admin.ProtocolRefused as refused:
        return _render(400, form, refused.errors)
    flash(_("Portal security is saved. Portals must follow it from their next sign-in."))
    return redirect(url_for("console.protocol", tenant=g.tenant.slug))
