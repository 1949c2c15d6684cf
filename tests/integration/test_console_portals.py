"""The console's portals: register (the secret shown once and working), edit the exact redirect
URIs (what /authorize accepts changes), rotate the secret, delete — each audited with the admin."""

from __future__ import annotations

import html
import re
from types import SimpleNamespace

from sqlalchemy import select

from idp import db
from idp.models import AuditEvent, AuthorizationCode, Client, Tenant, Token
from idp import hashing
from tests.support.account import password_sign_in
from tests.support.console import admin_browser
from tests.support.journey import CSRF, Browser, field, query
from tests.support.rp import basic, get_code, params_for, redeem
from tests.support.world import make_world

SECRET = re.compile(r'id="client-secret" value="([^"]+)"')
CLIENT_ID = re.compile(r'<code id="client-id">([^<]+)</code>')


def portals_url(world, *rest):
    return "/".join([f"/t/{world.slug}/admin/portals", *rest])


def register(browser, world, **form):
    page = browser.get(portals_url(world)).text
    data = {"csrf_token": field(CSRF, page), "name": "Payroll",
            "redirect_uris": "https://payroll.test/cb", "post_logout_redirect_uris": "",
            "grant_types": ["authorization_code", "refresh_token"], "min_acr": "",
            "id_token_alg": "RS256", **form}
    return browser.post(portals_url(world), data)


def edit(browser, world, creds_or_id, **form):
    cid = getattr(creds_or_id, "client_id", creds_or_id)
    page = browser.get(portals_url(world, cid)).text
    data = {"csrf_token": field(CSRF, page), "name": html.unescape(re.search(r'id="portal-name" name="name" value="([^"]*)"', page).group(1)),
            "redirect_uris": html.unescape(re.search(r'name="redirect_uris"[^>]*>([^<]*)</textarea>', page).group(1)),
            "post_logout_redirect_uris": html.unescape(re.search(r'name="post_logout_redirect_uris"[^>]*>([^<]*)</textarea>', page).group(1)),
            "min_acr": "", **form}
    return browser.post(portals_url(world, cid), data)


def act(browser, world, client_id, action):
    page = browser.get(portals_url(world, client_id)).text
    assert 'data-confirm="' in page and f"/{action}" in page
    return browser.post(portals_url(world, client_id, action), {"csrf_token": field(CSRF, page)})


def client_credentials(app, world, client_id, secret):
    return app.test_client().post(f"/t/{world.slug}/token", headers=basic(client_id, secret),
                                  data={"grant_type": "client_credentials"})


def events(app, action, client_id):
    with app.app_context():
        rows = list(db.session().scalars(select(AuditEvent).where(
            AuditEvent.action == action, AuditEvent.client_id == client_id)))
        db.session().expunge_all()
        return rows


def named(world, name: str) -> Client | None:
    """The world's tenant's portal called ``name`` (other tests' tenants share the database)."""
    return db.session().scalar(select(Client).join(Tenant, Tenant.id == Client.tenant_id)
                               .where(Tenant.slug == world.slug, Client.name == name))


def stored(app, client_id) -> Client | None:
    """The row as the database has it now (detached, so it can be read after the context)."""
    with app.app_context():
        row = db.session().scalar(select(Client).where(Client.client_id == client_id))
        if row is not None:
            db.session().expunge(row)
        return row


def test_the_list_shows_every_portal_of_this_tenant(app, world):
    page = admin_browser(app, world).get(portals_url(world)).text
    for creds, kind in ((world.portal, "Confidential"), (world.spa, "Public"), (world.service, "Confidential")):
        row = re.search(rf'<tr data-client="{re.escape(creds.client_id)}">(.*?)</tr>', page, re.S).group(1)
        assert kind in row
    assert "https://portal.test/callback" in page and "client_credentials" in page


def test_a_registered_portals_secret_works_once_shown_and_is_never_shown_again(app, world):
    browser = admin_browser(app, world)
    done = register(browser, world, name="Billing", grant_types=["authorization_code", "client_credentials"],
                    min_acr="mfa", redirect_uris="https://billing.test/cb",
                    post_logout_redirect_uris="https://billing.test/bye")
    assert done.status == 200 and "no-store" in done.headers["Cache-Control"]
    secret, client_id = field(SECRET, done.text), field(CLIENT_ID, done.text)
    assert "only time the secret is shown" in done.text

    r = client_credentials(app, world, client_id, secret)
    assert r.status_code == 200 and "access_token" in r.get_json()

    row = stored(app, client_id)
    assert row.secret_hash == hashing.digest("client-secret", secret) and secret not in row.secret_hash
    assert row.name == "Billing" and row.min_acr == "mfa"
    assert row.redirect_uris == ["https://billing.test/cb"]
    assert row.post_logout_redirect_uris == ["https://billing.test/bye"]
    for later in (portals_url(world), portals_url(world, client_id)):
        page = browser.get(later)
        assert page.status == 200 and secret not in page.text and client_id in page.text
    [created] = events(app, "client.created", client_id)
    assert created.actor == world.admin


def test_a_public_portal_has_no_secret(app, world):
    done = register(admin_browser(app, world), world, name="Mobile", public="1",
                    redirect_uris="http://127.0.0.1:9000/cb\n\nhttp://127.0.0.1:9000/cb\n")
    assert done.status == 200 and 'id="client-secret"' not in done.text
    row = stored(app, field(CLIENT_ID, done.text))
    assert row.is_public and row.redirect_uris == ["http://127.0.0.1:9000/cb"]


def test_an_invalid_uri_reshows_the_form_with_the_message_and_saves_nothing(app, world):
    browser = admin_browser(app, world)
    done = register(browser, world, name="Leaky", redirect_uris="http://leaky.example/cb",
                    post_logout_redirect_uris="https://leaky.example/bye")
    assert done.status == 400
    assert "must use https" in html.unescape(done.text)
    assert 'value="Leaky"' in done.text and "http://leaky.example/cb</textarea>" in done.text
    assert "https://leaky.example/bye</textarea>" in done.text
    with app.app_context():
        assert named(world, "Leaky") is None


def test_a_public_portal_cannot_have_client_credentials(app, world):
    done = register(admin_browser(app, world), world, name="Odd", public="1",
                    grant_types=["client_credentials"])
    assert done.status == 400 and "public client cannot use client_credentials" in done.text
    assert 'id="portal-public" name="public" value="1" checked' in done.text


def test_editing_redirect_uris_changes_what_authorize_accepts(app, world):
    browser = admin_browser(app, world)
    new_uri = "https://portal.test/new-callback"
    done = edit(browser, world, world.portal, redirect_uris=new_uri)
    assert done.status == 302
    assert new_uri in browser.get(done.location).text

    rp = Browser(app.test_client())
    old = rp.get(f"/t/{world.slug}/authorize", params_for(world.portal))
    assert old.status == 400 and old.location is None and "not allowed" in old.text
    new = rp.get(f"/t/{world.slug}/authorize", params_for(world.portal, redirect_uri=new_uri))
    assert new.status in (200, 302) and "not allowed" not in new.text
    if new.status == 302:
        assert "/login" in new.location
    [updated] = events(app, "client.updated", world.portal.client_id)
    assert updated.actor == world.admin and updated.data["changes"]["redirect_uris"] == [new_uri]


def test_an_invalid_uri_in_an_edit_changes_nothing(app, world):
    browser = admin_browser(app, world)
    done = edit(browser, world, world.portal, name="Renamed",
                redirect_uris="https://portal.test/callback\nhttp://portal.example/cb")
    assert done.status == 400 and "must use https" in html.unescape(done.text)
    assert 'value="Renamed"' in done.text and "http://portal.example/cb" in done.text  # as typed
    row = stored(app, world.portal.client_id)
    assert row.name == "Portal" and row.redirect_uris == ["https://portal.test/callback"]
    assert events(app, "client.updated", world.portal.client_id) == []


def test_the_name_logout_uris_and_minimum_acr_are_edited(app, world):
    browser = admin_browser(app, world)
    done = edit(browser, world, world.portal, name="Portal v2", min_acr="phr",
                post_logout_redirect_uris="https://portal.test/bye\nhttps://portal.test/goodbye")
    assert done.status == 302
    page = browser.get(done.location).text
    assert 'value="Portal v2"' in page and '<option value="phr" selected>' in page
    row = stored(app, world.portal.client_id)
    assert row.min_acr == "phr"
    assert row.post_logout_redirect_uris == ["https://portal.test/bye", "https://portal.test/goodbye"]
    edit(browser, world, world.portal, min_acr="")
    assert stored(app, world.portal.client_id).min_acr is None


def test_an_authorization_code_client_keeps_a_redirect_uri(app, world):
    done = edit(admin_browser(app, world), world, world.portal, redirect_uris="")
    assert done.status == 400 and "at least one redirect URI" in done.text
    assert stored(app, world.portal.client_id).redirect_uris == ["https://portal.test/callback"]


def test_rotating_the_secret_ends_the_old_one_at_once(app, world):
    browser = admin_browser(app, world)
    old = world.service.client_secret
    assert client_credentials(app, world, world.service.client_id, old).status_code == 200
    done = act(browser, world, world.service.client_id, "rotate")
    assert done.status == 200 and "no-store" in done.headers["Cache-Control"]
    new = field(SECRET, done.text)
    assert new != old

    refused = client_credentials(app, world, world.service.client_id, old)
    assert refused.status_code == 401 and refused.get_json()["error"] == "invalid_client"
    assert client_credentials(app, world, world.service.client_id, new).status_code == 200
    assert new not in browser.get(portals_url(world, world.service.client_id)).text
    [rotated] = events(app, "client.secret_rotated", world.service.client_id)
    assert rotated.actor == world.admin and new not in str(rotated.data)


def test_a_public_portal_has_no_rotate_button(app, world):
    browser = admin_browser(app, world)
    page = browser.get(portals_url(world, world.spa.client_id)).text
    assert "/rotate" not in page
    token = field(CSRF, page)
    done = browser.post(portals_url(world, world.spa.client_id, "rotate"), {"csrf_token": token})
    assert done.status == 302 and "no secret" in browser.get(done.location).text


def test_deleting_a_portal_removes_it_its_codes_and_tokens(app, world):
    code, verifier = get_code(app.test_client(), world, world.portal)
    issued = redeem(app.test_client(), world, world.portal, code, verifier)
    assert issued.status_code == 200
    pk = stored(app, world.portal.client_id).id

    browser = admin_browser(app, world)
    page = browser.get(portals_url(world, world.portal.client_id)).text
    assert re.search(r'/delete"\s+class="inline"\s+data-confirm="Delete Portal\?', page)
    done = act(browser, world, world.portal.client_id, "delete")
    assert done.status == 302
    listing = browser.get(done.location).text
    assert "Portal is deleted" in listing and world.portal.client_id not in listing

    assert stored(app, world.portal.client_id) is None
    with app.app_context():
        session = db.session()
        assert session.scalars(select(Token).where(Token.client_pk == pk)).all() == []
        assert session.scalars(select(AuthorizationCode).where(AuthorizationCode.client_pk == pk)).all() == []
    gone = Browser(app.test_client()).get(f"/t/{world.slug}/authorize", params_for(world.portal))
    assert gone.status == 400 and "Unknown application" in gone.text
    refused = app.test_client().post(f"/t/{world.slug}/token", headers=basic(world.portal.client_id, world.portal.client_secret),
                                     data={"grant_type": "refresh_token", "refresh_token": issued.get_json()["refresh_token"]})
    assert refused.status_code == 401
    [deleted] = events(app, "client.deleted", world.portal.client_id)
    assert deleted.actor == world.admin and deleted.data["name"] == "Portal"
    assert browser.get(portals_url(world, world.portal.client_id)).status == 404


def test_a_member_gets_403(app, world):
    browser = Browser(app.test_client())
    password_sign_in(browser, world, world.alice)
    assert browser.get(portals_url(world)).status == 403
    assert browser.get(portals_url(world, world.portal.client_id)).status == 403
    token = field(CSRF, browser.get(f"/t/{world.slug}/login").text)
    assert browser.post(portals_url(world, world.service.client_id, "rotate"), {"csrf_token": token}).status == 403
    assert client_credentials(app, world, world.service.client_id, world.service.client_secret).status_code == 200


def test_another_tenants_portal_is_not_found_here(app, settings, world):
    other = make_world(app, settings)
    browser = admin_browser(app, world)
    assert browser.get(portals_url(world, other.service.client_id)).status == 404
    token = field(CSRF, browser.get(portals_url(world)).text)
    for action in ("rotate", "delete"):
        assert browser.post(portals_url(world, other.service.client_id, action), {"csrf_token": token}).status == 404
    assert browser.post(portals_url(world, other.portal.client_id),
                        {"csrf_token": token, "name": "Hijacked", "redirect_uris": "https://evil.test/cb"}).status == 404
    assert client_credentials(app, other, other.service.client_id, other.service.client_secret).status_code == 200
    assert stored(app, other.portal.client_id).name == "Portal"
    assert other.service.client_id not in browser.get(portals_url(world)).text


def test_a_post_without_the_csrf_token_is_refused(app, world):
    browser = admin_browser(app, world)
    done = browser.post(portals_url(world, world.service.client_id, "rotate"), {})
    assert done.status == 400
    assert client_credentials(app, world, world.service.client_id, world.service.client_secret).status_code == 200


def service_token(app, world, scope: str):
    return app.test_client().post(
        f"/t/{world.slug}/token", headers=basic(world.service.client_id, world.service.client_secret),
        data={"grant_type": "client_credentials", "scope": scope})


def test_an_administrator_grants_and_takes_back_a_services_admin_api_access(app, world):
    browser = admin_browser(app, world)
    assert 'name="api_scopes"' not in browser.get(portals_url(world, world.portal.client_id)).text
    assert service_token(app, world, "admin:read").status_code == 400  # not granted yet
    done = edit(browser, world, world.service, api_scopes=["admin:read", "mfa:manage"])
    assert done.status == 302
    page = browser.get(done.location).text
    assert '<dd id="api-access">admin:read, mfa:manage</dd>' in page
    assert 'value="admin:read" checked' in page and 'value="admin:write">' in page
    assert service_token(app, world, "admin:read mfa:manage").get_json()["scope"] == "admin:read mfa:manage"
    # The sign-in scopes it had stay; unticking takes the API scopes back.
    edit(browser, world, world.service)
    assert stored(app, world.service.client_id).scope == "openid profile email offline_access"
    assert service_token(app, world, "admin:read").status_code == 400
    granted, taken = sorted(events(app, "client.updated", world.service.client_id),
                            key=lambda e: e.id)
    assert granted.actor == world.admin and "admin:read" in granted.data["changes"]["scope"]
    assert "admin:read" not in taken.data["changes"]["scope"]


def test_a_portal_that_signs_people_in_cannot_be_given_admin_api_access(app, world):
    browser = admin_browser(app, world)
    done = register(browser, world, name="Sneaky", api_scopes=["admin:write"])
    assert done.status == 400 and "client_credentials grant" in done.text
    with app.app_context():
        assert named(world, "Sneaky") is None
    done = register(browser, world, name="Back office", redirect_uris="",
                    grant_types=["client_credentials"], api_scopes=["users:provision"])
    assert done.status == 200
    assert stored(app, field(CLIENT_ID, done.text)).scope.endswith(" users:provision")


def test_a_portal_registered_with_an_id_of_its_own_is_pairwise(app, world):
    browser = admin_browser(app, world)
    assert "What the portal learns of who signs in" in browser.get(portals_url(world)).text
    done = register(browser, world, name="Clinic", subject_type="pairwise",
                    redirect_uris="https://clinic.test/cb\nhttps://clinic.test/other")
    assert done.status == 200
    row = stored(app, field(CLIENT_ID, done.text))
    assert row.subject_type == "pairwise" and row.sector_identifier_uri is None
    assert 'id="subject-pairwise" name="subject_type" value="pairwise" checked' in done.text


def test_a_pairwise_portal_on_two_hosts_needs_a_sector_identifier_uri(app, world):
    done = register(admin_browser(app, world), world, name="Spread", subject_type="pairwise",
                    redirect_uris="https://a.test/cb\nhttps://b.test/cb")
    assert done.status == 400
    assert "need a sector identifier URI" in html.unescape(done.text)
    with app.app_context():
        assert named(world, "Spread") is None


def test_changing_what_a_live_portal_learns_asks_for_a_confirmation(app, world):
    browser = admin_browser(app, world)
    refused = edit(browser, world, world.portal, subject_type="pairwise")
    assert refused.status == 400 and "tick the box to confirm" in html.unescape(refused.text)
    assert stored(app, world.portal.client_id).subject_type == "public"
    done = edit(browser, world, world.portal, subject_type="pairwise", confirm_subject_change="1")
    assert done.status in (302, 303)
    assert stored(app, world.portal.client_id).subject_type == "pairwise"
    # Saving other settings of a pairwise portal changes nothing of its ids: nothing to confirm.
    again = edit(browser, world, world.portal, subject_type="pairwise", name="Renamed")
    assert again.status in (302, 303) and stored(app, world.portal.client_id).name == "Renamed"


def test_a_portal_registered_with_dpop_par_and_a_request_object_rule_keeps_them(app, client, world):
    browser = admin_browser(app, world)
    form = browser.get(portals_url(world)).text
    for words in ("Tokens only for the portal's own key (DPoP)",
                  "How the portal sends sign-in requests", "(pushed authorization requests)"):
        assert words in html.unescape(form)
    done = register(browser, world, name="Bank", redirect_uris="https://bank.test/cb",
                    dpop_bound_access_tokens="1", require_par="1",
                    require_signed_request_object="1", request_object_signing_alg="PS256")
    assert done.status == 200, done.text[:500]
    client_id = field(CLIENT_ID, done.text)
    row = stored(app, client_id)
    assert (row.dpop_bound_access_tokens, row.require_par, row.require_signed_request_object,
            row.request_object_signing_alg) == (True, True, True, "PS256")
    page = browser.get(portals_url(world, client_id)).text
    for box in ("portal-dpop", "portal-require-par", "portal-require-signed"):
        assert re.search(rf'id="{box}"[^>]*checked', page), box
    assert '<option value="PS256" selected>' in page
    # The portal is held to it: a sign-in request not pushed first is refused.
    bank = SimpleNamespace(client_id=client_id, redirect_uri="https://bank.test/cb")
    refused = Browser(client).get(f"/t/{world.slug}/authorize", params_for(bank))
    assert query(refused.location)["error"] == "invalid_request"


def test_registering_with_no_rules_leaves_them_off(app, world):
    done = register(admin_browser(app, world), world, name="Plain")
    row = stored(app, field(CLIENT_ID, done.text))
    assert not (row.dpop_bound_access_tokens or row.require_par
                or row.require_signed_request_object or row.request_object_signing_alg)


def test_request_rules_for_a_portal_that_signs_no_one_in_are_refused_as_typed(app, world):
    browser = admin_browser(app, world)
    done = register(browser, world, name="Batch", redirect_uris="",
                    grant_types=["client_credentials"], require_par="1",
                    dpop_bound_access_tokens="1")
    assert done.status == 400
    assert "for a portal that signs people in" in html.unescape(done.text)
    assert re.search(r'id="portal-require-par"[^>]*checked', done.text)
    assert re.search(r'id="portal-dpop"[^>]*checked', done.text)
    bad_alg = register(browser, world, name="Batch", request_object_signing_alg="HS256")
    assert bad_alg.status == 400 and "request object algorithm" in bad_alg.text
    with app.app_context():
        assert named(world, "Batch") is None
