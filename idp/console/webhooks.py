"""The console's webhooks (administrators only): the endpoints, adding one, its page (settings,
turn on/off, rotate the secret, send a test event, delete) and its delivery log.

A new or rotated secret is shown once, on the page that answers the POST (never cached).
Every change goes through ``idp.admin.webhooks``, the CLI's functions, audited with the admin.
"""

from __future__ import annotations

from flask import (abort, current_app, flash, g, make_response, redirect, render_template,
                   request, url_for)
from flask_babel import gettext as _, lazy_gettext as _l

from idp import db
from idp.admin import webhooks as hooks
from idp.console.portals import no_store
from idp.console.views import bp
from idp.directory import MAX_WEBHOOK_URL, DirectoryError, NotFound
from idp.mfa.secrets import SecretBox
from idp.notify.webhooks import EVENTS, ROTATION_OVERLAP

STATES = {"pending": _l("Waiting to be sent"), "sent": _l("Delivered"), "failed": _l("Given up"),
          "expired": _l("Given up (too old)"), "dropped": _l("Not sent (endpoint off or removed)")}


def _box() -> SecretBox:
    return current_app.extensions["idp.secretbox"]


def _endpoint(public_id: str):
    try:
        return hooks.find_endpoint(db.session(), g.tenant, public_id)
    except NotFound:
        abort(404, description=_("There is no such webhook endpoint in this organisation."))


def _typed() -> dict:
    """The form as typed (re-shown on an error)."""
    return {"url": request.form.get("url", "")[:MAX_WEBHOOK_URL + 100],
            "description": request.form.get("description", "")[:400],
            "all_events": request.form.get("all_events") == "1",
            "event_types": [t for t in request.form.getlist("event_types")][:len(EVENTS) + 5]}


def _chosen(form: dict) -> list[str]:
    if form["all_events"]:
        return []
    if not form["event_types"]:
        raise DirectoryError(_("Choose the events this endpoint hears, or tick “All events”."))
    return form["event_types"]


def _render_list(status: int = 200, error: str | None = None, form: dict | None = None):
    form = form or {"url": "", "description": "", "all_events": True, "event_types": []}
    return render_template("console/webhooks.html", endpoints=hooks.endpoints(db.session(), g.tenant),
                           events=EVENTS, form=form, error=error,
                           max_url=MAX_WEBHOOK_URL), status


def _render_endpoint(endpoint, status: int = 200, error: str | None = None,
                     form: dict | None = None, secret: str | None = None):
    """One endpoint's page; ``secret`` (just created or rotated) is shown on this answer only."""
    form = form or {"url": endpoint.url, "description": endpoint.description,
                    "all_events": not endpoint.event_types,
                    "event_types": list(endpoint.event_types)}
    log = hooks.deliveries(db.session(), g.tenant, endpoint.public_id)
    return render_template("console/webhook.html", endpoint=endpoint, events=EVENTS, form=form,
                           error=error, secret=secret, deliveries=log, states=STATES,
                           overlap_hours=int(ROTATION_OVERLAP.total_seconds() // 3600),
                           max_url=MAX_WEBHOOK_URL), status


@bp.get("/webhooks", endpoint="webhooks")
def webhooks_list():
    return _render_list()


@bp.post("/webhooks")
def webhook_add():
    form = _typed()
    try:
        new = hooks.create_endpoint(db.session(), _box(), g.tenant, g.admin.email, form["url"],
                                    description=form["description"], event_types=_chosen(form))
    except DirectoryError as e:
        return _render_list(400, str(e), form)
    flash(_("The endpoint is added. Copy its signing secret now."))
    return no_store(make_response(_render_endpoint(new.endpoint, secret=new.secret)))


@bp.get("/webhooks/<public_id>")
def webhook(public_id):
    return _render_endpoint(_endpoint(public_id))


@bp.post("/webhooks/<public_id>")
def webhook_update(public_id):
    endpoint = _endpoint(public_id)
    form = _typed()
    try:
        hooks.update_endpoint(db.session(), g.tenant, endpoint.public_id, g.admin.email,
                              url=form["url"], description=form["description"],
                              event_types=_chosen(form))
    except DirectoryError as e:  # checked before anything changes
        return _render_endpoint(endpoint, 400, str(e), form)
    flash(_("The endpoint is saved."))
    return redirect(url_for("console.webhook", tenant=g.tenant.slug, public_id=endpoint.public_id))


@bp.post("/webhooks/<public_id>/enabled")
def webhook_enabled(public_id):
    endpoint = _endpoint(public_id)
    on = request.form.get("enabled") == "1"
    hooks.update_endpoint(db.session(), g.tenant, endpoint.public_id, g.admin.email, enabled=on)
    flash(_("The endpoint is turned on: new events are sent to it.") if on else
          _("The endpoint is turned off: nothing is sent to it until it is turned on again."))
    return redirect(url_for("console.webhook", tenant=g.tenant.slug, public_id=endpoint.public_id))


@bp.post("/webhooks/<public_id>/rotate")
def webhook_rotate(public_id):
    endpoint = _endpoint(public_id)
    new = hooks.rotate_secret(db.session(), _box(), g.tenant, endpoint.public_id, g.admin.email)
    flash(_("The signing secret is rotated. Copy the new one now."))
    return no_store(make_response(_render_endpoint(new.endpoint, secret=new.secret)))


@bp.post("/webhooks/<public_id>/test")
def webhook_test(public_id):
    endpoint = _endpoint(public_id)
    try:
        hooks.send_test(db.session(), g.tenant, endpoint.public_id, g.admin.email)
    except DirectoryError as e:
        flash(str(e))
    else:
        flash(_("A test event is on its way: it shows in the delivery log below."))
    return redirect(url_for("console.webhook", tenant=g.tenant.slug, public_id=endpoint.public_id))


@bp.post("/webhooks/<public_id>/delete")
def webhook_delete(public_id):
    endpoint = _endpoint(public_id)
    url = hooks.delete_endpoint(db.session(), g.tenant, endpoint.public_id, g.admin.email)
    flash(_("The endpoint %(url)s is deleted: nothing more is sent to it.", url=url))
    return redirect(url_for("console.webhooks", tenant=g.tenant.slug))
