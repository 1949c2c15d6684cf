"""A tenant's protocol settings (issue 22): what admins ask of their portals beyond the
defaults — PAR for every authorization request, a nonce in DPoP proofs, the hosts
self-registered portals may send people to — set in the console, the admin API or the CLI by
the same checks, audited, and said at once by discovery on both of its paths (the direct one
in front of Flask and Flask's own)."""

from __future__ import annotations

import json
import re

import pytest
from sqlalchemy import select
from werkzeug.test import Client

from idp import db, directory
from idp.models import AuditEvent
from tests.support.api import api_for
from tests.support.console import admin_browser
from tests.support.lifecycle import add_user
from tests.support.protocol import protocol_page, save_protocol

DISCOVERY = "/.well-known/openid-configuration"


def audited(app, world) -> list[tuple[str, dict]]:
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        return [(e.actor, e.data) for e in db.session().scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == "protocol.changed")
            .order_by(AuditEvent.id))]


def discovered(app, world) -> tuple[dict, dict]:
    """Discovery as the direct path serves it, and as Flask's view does."""
    direct = app.test_client().get(f"/t/{world.slug}{DISCOVERY}")
    flask = Client(app.wsgi_app.wsgi_app).get(f"/t/{world.slug}{DISCOVERY}")
    assert direct.status_code == flask.status_code == 200
    return json.loads(direct.get_data()), json.loads(flask.get_data())


def test_requiring_par_is_said_by_discovery_at_once_on_both_paths(app, client, world):
    for doc in discovered(app, world):
        assert doc["require_pushed_authorization_requests"] is False
    api = api_for(app, client, world)
    assert api.patch("/protocol", json={"require_par": True}).status_code == 200
    for doc in discovered(app, world):
        assert doc["require_pushed_authorization_requests"] is True
    # Another tenant's discovery is its own.
    other = directory.create_tenant
    with app.app_context():
        other(db.session(), f"{world.slug}-b", "Other")
        db.session().commit()
    direct = app.test_client().get(f"/t/{world.slug}-b{DISCOVERY}").get_json()
    assert direct["require_pushed_authorization_requests"] is False
    assert api.patch("/protocol", json={"require_par": False}).status_code == 200
    for doc in discovered(app, world):
        assert doc["require_pushed_authorization_requests"] is False


def test_the_admin_api_reads_and_changes_the_settings_by_the_console_rules(app, client, world):
    api = api_for(app, client, world)
    assert api.get("/protocol").get_json() == {"require_par": False, "dpop_nonce_required": False,
                                               "registration_redirect_hosts": []}
    refused = api.patch("/protocol", json={"dpop_nonce_required": True,
                                           "registration_redirect_hosts": ["https://a.example/x"]})
    assert refused.status_code == 422
    [error] = refused.get_json()["errors"]
    assert error["field"] == "registration_redirect_hosts" and "https://" in error["message"]
    assert api.get("/protocol").get_json()["dpop_nonce_required"] is False  # nothing changed
    changed = api.patch("/protocol", json={
        "dpop_nonce_required": True,
        "registration_redirect_hosts": [" Portal.Example.COM ", "*.apps.example.com",
                                        "portal.example.com", "bücher.example"]})
    assert changed.status_code == 200
    assert changed.get_json() == {
        "require_par": False, "dpop_nonce_required": True,
        "registration_redirect_hosts": ["portal.example.com", "*.apps.example.com",
                                        "xn--bcher-kva.example"]}
    assert api.get("/protocol").get_json() == changed.get_json()
    assert api.patch("/protocol", json={"require_par": None}).status_code == 422
    assert api.patch("/protocol", json={"require_pars": True}).status_code == 422  # a typo
    [(actor, data)] = audited(app, world)
    assert world.service.client_id in actor
    assert data["dpop_nonce_required"] is True and "require_par" not in data
    reader = api_for(app, client, world, "admin:read")
    assert reader.get("/protocol").status_code == 200
    assert reader.patch("/protocol", json={"require_par": True}).status_code == 403


@pytest.mark.parametrize("host, says", [
    ("https://portal.example.com", "without https://"),
    ("portal.example.com/callback", "without https://"),
    ("portal.example.com:8443", "without https://"),
    ("*.com", "whole top-level domain"),
    ("*", "not a host name"),
    ("portal..example.com", "not a host name"),
    ("-portal.example.com", "not a host name"),
    ("10.0.0.1", "not a host name"),
    ("port al.example.com", "not a host name"),
    ("a." * 130 + "com", "not a host name"),
])
def test_a_host_that_is_not_a_host_name_is_refused_with_what_to_give(app, client, world, host,
                                                                     says):
    refused = api_for(app, client, world).patch(
        "/protocol", json={"registration_redirect_hosts": [host]})
    assert refused.status_code == 422
    assert says in refused.get_json()["errors"][0]["message"]


def test_at_most_fifty_hosts(app, client, world):
    api = api_for(app, client, world)
    hosts = [f"p{i}.example.com" for i in range(51)]
    refused = api.patch("/protocol", json={"registration_redirect_hosts": hosts})
    assert refused.status_code == 422 and "at most 50" in refused.get_json()["errors"][0]["message"]
    assert api.patch("/protocol", json={"registration_redirect_hosts": hosts[:50]}).status_code == 200


def test_the_console_page_explains_saves_and_refuses_under_the_field(app, world):
    admin = admin_browser(app, world)
    page = protocol_page(admin, world)
    assert page.status == 200
    assert "pushed authorization requests (PAR)" in page.text
    assert "DPoP proofs must carry a nonce from us" in page.text
    assert 'href="/t/%s/admin/portal-security" aria-current="page"' % world.slug in page.text
    refused = save_protocol(admin, world, require_par=True, hosts="portal.example.com\nhttp://x.example")
    assert refused.status == 400
    assert re.search(r'<textarea id="registration_redirect_hosts"[^>]*aria-invalid="true"',
                     refused.text)
    assert "&#39;http://x.example&#39; is not a host name" in refused.text
    assert "portal.example.com\nhttp://x.example</textarea>" in refused.text  # kept as typed
    assert app.test_client().get(f"/t/{world.slug}{DISCOVERY}").get_json()[
        "require_pushed_authorization_requests"] is False  # nothing changed
    saved = save_protocol(admin, world, require_par=True, hosts="portal.example.com\n\n*.example.org")
    assert saved.status == 302
    page = protocol_page(admin, world).text
    assert "Portal security is saved." in page
    assert re.search(r'id="require_par" name="require_par" value="on" checked', page)
    assert not re.search(r'id="dpop_nonce_required" [^>]*checked', page)
    assert "portal.example.com\n*.example.org</textarea>" in page
    for doc in discovered(app, world):
        assert doc["require_pushed_authorization_requests"] is True
    [(actor, data)] = audited(app, world)
    assert actor == world.admin
    assert data == {"require_par": True,
                    "registration_redirect_hosts": ["portal.example.com", "*.example.org"]}


def test_the_page_is_for_administrators_only(app, world):
    add_user(app, world, "helpdesk@example.com", role="mfa-admin")
    helpdesk = admin_browser(app, world, "helpdesk@example.com")
    assert helpdesk.get(f"/t/{world.slug}/admin/portal-security").status == 403
    assert "/admin/portal-security" not in helpdesk.get(f"/t/{world.slug}/admin/users").text


def run_json(idp, *args):
    code, out, err = idp(*args)
    assert code == 0, err
    return json.loads(out)


def test_the_cli_shows_and_sets_the_settings(app, idp, world):
    assert run_json(idp, "protocol", "show", world.slug) == {
        "tenant": world.slug, "require_par": False, "dpop_nonce_required": False,
        "registration_redirect_hosts": []}
    after = run_json(idp, "protocol", "set", world.slug, "--require-par", "on", "--dpop-nonce", "on",
                     "--registration-redirect-host", "Portal.Example.com",
                     "--registration-redirect-host", "*.example.net")
    assert after == {"tenant": world.slug, "require_par": True, "dpop_nonce_required": True,
                     "registration_redirect_hosts": ["portal.example.com", "*.example.net"]}
    assert run_json(idp, "protocol", "show", world.slug) == after
    for doc in discovered(app, world):
        assert doc["require_pushed_authorization_requests"] is True
    # Only what is given changes.
    after = run_json(idp, "protocol", "set", world.slug, "--dpop-nonce", "off")
    assert after["require_par"] is True and after["registration_redirect_hosts"]
    assert run_json(idp, "protocol", "set", world.slug, "--no-registration-redirect-hosts")[
        "registration_redirect_hosts"] == []
    code, out, err = idp("protocol", "set", world.slug, "--registration-redirect-host",
                         "https://portal.example.com/cb")
    assert code == 1 and out == ""
    assert err.startswith("idp: ") and "without https://" in err and len(err.splitlines()) == 1
    assert [actor for actor, _ in audited(app, world)] == ["cli", "cli", "cli"]
