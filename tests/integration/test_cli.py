"""The `idp` command as a person or a script uses it: JSON out, one clear line on error."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timezone

import pytest
from sqlalchemy import select

from idp import db, directory
from idp.models import Client, Tenant
from idp import hashing
from tests.support.keys import jwks_kids, tenant_folder
from tests.support.pwned import FakePwnedPasswords
from tests.support.sector import SectorDocument


def test_tenant_user_and_client_create_print_json(app, idp, settings):
    slug = f"cli-{secrets.token_hex(3)}"
    code, out, _ = idp("tenant", "create", slug, "--name", "CLI Org")
    assert code == 0 and json.loads(out)["issuer"] == f"{settings.base_url}/t/{slug}"
    code, out, _ = idp("user", "create", slug, "Carol@Example.com", "--password-stdin", "--role", "admin",
                       "--phone", "+44 20 7946 0958", "--group", "finance", "--group", "staff",
                       stdin="a long enough password\n")
    user = json.loads(out)
    assert code == 0 and user["email"] == "carol@example.com" and user["role"] == "admin"
    assert user["phone"] == "+442079460958" and sorted(user["groups"]) == ["finance", "staff"]
    code, out, _ = idp("client", "create", slug, "--name", "Portal", "--redirect-uri", "https://p.test/cb",
                       "--post-logout-redirect-uri", "https://p.test/")
    created = json.loads(out)
    assert code == 0 and created["grant_types"] == ["authorization_code", "refresh_token"]
    with app.app_context():
        row = db.session().scalar(select(Client).where(Client.client_id == created["client_id"]))
        # Only a hash of the secret is stored.
        assert created["client_secret"] not in row.secret_hash
        assert row.secret_hash == hashing.digest("client-secret", created["client_secret"])


def test_public_client_has_no_secret_and_grant_types_are_chosen(idp, world):
    code, out, _ = idp("client", "create", world.slug, "--name", "SPA", "--public",
                       "--redirect-uri", "http://localhost:3000/cb")
    assert code == 0 and json.loads(out)["client_secret"] is None
    code, out, _ = idp("client", "create", world.slug, "--name", "Batch",
                       "--grant-types", "client_credentials")
    assert code == 0 and json.loads(out)["grant_types"] == ["client_credentials"]


PRIVATE = {"IDP_PRIVATE_CALLBACKS": "allow"}  # the test's sector document is on loopback


def test_a_pairwise_client_with_a_sector_identifier_uri(idp, world):
    uris = ["https://www.shop.test/cb", "https://app.shop-mobile.test/cb"]
    with SectorDocument(uris) as sector:
        code, out, err = idp("client", "create", world.slug, "--name", "Shop",
                             "--subject-type", "pairwise", "--sector-identifier-uri", sector.url,
                             "--redirect-uri", *uris, environ=PRIVATE)
        assert code == 0, err
        created = json.loads(out)
        assert (created["subject_type"], created["sector_identifier_uri"]) == ("pairwise", sector.url)
        code, out, err = idp("client", "update", world.slug, created["client_id"],
                             "--sector-identifier-uri", f"http://127.0.0.1:{sector.port}/other.json",
                             environ=PRIVATE)
    assert code != 0 and out == "" and "answered HTTP 404" in err


def _stored(app, client_id: str) -> tuple[str, str]:
    """The client's name and subject type as stored."""
    with app.app_context():
        row = db.session().scalar(select(Client).where(Client.client_id == client_id))
        return row.name, row.subject_type


def test_a_change_that_gives_every_user_a_new_sub_needs_confirm_new_subjects(app, idp, world):
    update = ("client", "update", world.slug, world.portal.client_id)
    code, out, err = idp(*update, "--subject-type", "pairwise")
    assert code != 0 and out == "" and len(err.strip().splitlines()) == 1
    assert "every user of Portal would get a new subject identifier (sub)" in err
    assert "nothing is changed" in err and "--confirm-new-subjects" in err
    assert _stored(app, world.portal.client_id) == ("Portal", "public")
    code, out, err = idp(*update, "--subject-type", "pairwise", "--confirm-new-subjects")
    assert code == 0, err
    assert json.loads(out)["subject_type"] == "pairwise"
    # What keeps every sub as it is needs nothing more: a new name, the same subject type.
    code, out, err = idp(*update, "--name", "Renamed", "--subject-type", "pairwise")
    assert code == 0, err
    assert _stored(app, world.portal.client_id) == ("Renamed", "pairwise")
    # Back to the public id: every sub changes again, so it needs the flag again.
    code, out, err = idp(*update, "--subject-type", "public")
    assert code != 0 and "--confirm-new-subjects" in err
    assert _stored(app, world.portal.client_id) == ("Renamed", "pairwise")


@pytest.mark.parametrize("args,stdin,message", [
    (("tenant", "create", "Bad Slug!"), "", "slug"),
    (("user", "create", "no-such-tenant", "a@b.test", "--password-stdin"), "long enough pw\n", "no tenant"),
    (("user", "create", "{slug}", "not-an-email", "--password-stdin"), "long enough pw\n", "email"),
    (("user", "create", "{slug}", "x@example.com", "--password-stdin"), "short\n", "at least"),
    (("user", "create", "{slug}", "x@example.com", "--password-stdin"), "Password123\n",
     "password refused: This password is too common"),
    (("user", "create", "{slug}", "xavier.dupont@example.com", "--password-stdin"),
     "Xavier.Dupont@example.com\n", "password refused: Choose a password that is not your email"),
    (("user", "create", "{slug}", "x@example.com", "--password-stdin"), "nul\x00inside!\n",
     "password refused: A password cannot contain control characters"),
    (("user", "create", "{slug}", "x@example.com"), "", "--password-stdin"),
    (("user", "create", "{slug}", "alice@example.com", "--password-stdin"), "long enough pw\n", "already"),
    (("user", "create", "{slug}", "y@example.com", "--password-stdin", "--phone", "12"), "long enough pw\n", "phone"),
    (("client", "create", "{slug}", "--name", "X", "--redirect-uri", "http://evil.test/cb"), "", "https"),
    # A browser reads the backslash as a slash: it would go to evil.test, not to p.test.
    (("client", "create", "{slug}", "--name", "X", "--redirect-uri",
      "https://evil.test\\@p.test/cb"), "", "not a valid URL"),
    (("client", "create", "{slug}", "--name", "X"), "", "redirect-uri"),
    (("client", "create", "{slug}", "--name", "X", "--grant-types", "password"), "", "grant types"),
    (("client", "create", "{slug}", "--name", "X", "--public", "--grant-types", "client_credentials"), "", "public"),
    (("client", "create", "{slug}", "--name", "X", "--subject-type", "pairwise", "--redirect-uri",
      "https://a.test/cb", "https://b.test/cb"), "", "need a sector identifier URI"),
])
def test_errors_are_one_clear_line_and_a_nonzero_exit(idp, world, args, stdin, message):
    code, out, err = idp(*[a.format(slug=world.slug) for a in args], stdin=stdin)
    assert code != 0 and out == ""
    assert err.startswith("idp: ") and len(err.strip().splitlines()) == 1 and message in err


@pytest.mark.parametrize("variable,value,message", [
    ("IDP_REDIS_URL", "redis+sentinel://sentinel-1,sentinel-2/", "/service"),
    ("IDP_REDIS_URL", "redis+sentinel://sentinel-1:port/idp", "sentinel host"),
    ("IDP_LOG_FORMAT", "xml", "json or text"),
])
def test_a_malformed_setting_is_one_clear_line(idp, variable, value, message):
    code, out, err = idp("serve", "--port", "1", environ={variable: value})
    assert code != 0 and out == ""
    assert err.startswith("idp: ") and len(err.strip().splitlines()) == 1 and message in err, err


def test_init_is_idempotent_and_keys_rotate_adds_keys(app, client, idp, settings, world):
    assert jwks_kids(client, world.slug)  # the tenant has keys (made when first asked for)
    code, out, _ = idp("init")
    done = json.loads(out)
    assert code == 0 and done["tenants_given_shared_keys"] == done["shared_keys_retired"] == []
    folder = tenant_folder(app, settings, world.slug)
    before = {p.name for p in folder.glob("*.json")}
    code, out, _ = idp("keys", "rotate", world.slug)
    [rotated] = json.loads(out)["rotated"]
    assert code == 0 and json.loads(out)["published_now"] and rotated["tenant"] == world.slug
    assert set(rotated["keys"]) == {"RS256", "ES256"}
    assert {f"{kid}.json" for kid in rotated["keys"].values()} == {p.name for p in folder.glob("*.json")} - before
    # Published now, signing once every cached JWKS (max-age 300) has them.
    signing_from = datetime.fromisoformat(rotated["signing_from"])
    assert 295 <= (signing_from - datetime.now(timezone.utc)).total_seconds() <= 301
    code, out, _ = idp("keys", "rotate", world.slug, "--now")
    assert code == 0 and abs((datetime.fromisoformat(json.loads(out)["rotated"][0]["signing_from"])
                              - datetime.now(timezone.utc)).total_seconds()) < 5


def test_keys_rotate_for_an_unknown_tenant_is_one_clear_line(idp, settings):
    before = sorted(p.relative_to(settings.keys_dir) for p in settings.keys_dir.rglob("*.json"))
    code, out, err = idp("keys", "rotate", "no-such-tenant")
    assert code != 0 and out == ""
    assert err.strip() == "idp: no tenant 'no-such-tenant'"
    assert sorted(p.relative_to(settings.keys_dir) for p in settings.keys_dir.rglob("*.json")) == before


def test_duplicate_tenant_is_refused_and_nothing_is_changed(app, idp, world):
    code, _, err = idp("tenant", "create", world.slug)
    assert code == 1 and "already exists" in err
    with app.app_context():
        assert len(db.session().scalars(select(Tenant).where(Tenant.slug == world.slug)).all()) == 1


def test_user_create_follows_the_tenants_password_minimum_and_pwned_passwords(app, idp, world):
    code, _, err = idp("policy", "set", world.slug, "--password-min-length", "12")
    assert code == 0, err
    code, out, err = idp("user", "create", world.slug, "carol@example.com", "--password-stdin",
                         stdin="k3#Vq9zPw7!\n")
    assert (code, out, err) == (1, "", "idp: password refused: Use at least 12 characters.\n")
    with FakePwnedPasswords({"k3#Vq9zPw7!m": 1}) as breaches:
        code, out, err = idp("user", "create", world.slug, "carol@example.com", "--password-stdin",
                             stdin="k3#Vq9zPw7!m\n",
                             environ={"IDP_PWNED_PASSWORDS_URL": breaches.url})
        assert code == 1 and "password refused: This password has appeared in a data breach" in err
        assert len(breaches.requests) == 1
    with app.app_context():
        session = db.session()
        assert directory.find_user(session, directory.get_tenant(session, world.slug),
                                   "carol@example.com") is None
    code, out, err = idp("user", "create", world.slug, "carol@example.com", "--password-stdin",
                         stdin="k3#Vq9zPw7!mQ\n")
    assert code == 0 and json.loads(out)["email"] == "carol@example.com"
