"""Which ``sub`` a client sees (``idp.subjects``, OIDC Core 8): the rule alone."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from idp import subjects

KEY = "k" * 64


def portal(*redirect_uris, subject_type="pairwise", sector_uri=None, tenant_id=1):
    return SimpleNamespace(subject_type=subject_type, tenant_id=tenant_id,
                           redirect_uris=list(redirect_uris), sector_identifier_uri=sector_uri)


def test_the_sector_is_the_redirect_hosts_or_the_sector_uris_host():
    assert subjects.sector_of(portal("https://Shop.Example:8443/cb")) == "shop.example"
    assert subjects.sector_of(portal("https://a.example/cb", "https://b.example/cb",
                                     sector_uri="https://ids.example/sector.json")) == "ids.example"


def test_a_public_client_sees_the_public_subject():
    assert subjects.subject_for("u-123", portal("https://a.example/cb", subject_type="public"),
                                KEY) == "u-123"


def test_pairwise_depends_on_user_sector_tenant_and_secret_only():
    a = subjects.subject_for("u-123", portal("https://a.example/cb"), KEY)
    assert a == subjects.subject_for("u-123", portal("https://a.example/other"), KEY)
    others = {subjects.subject_for("u-124", portal("https://a.example/cb"), KEY),
              subjects.subject_for("u-123", portal("https://b.example/cb"), KEY),
              subjects.subject_for("u-123", portal("https://a.example/cb", tenant_id=2), KEY),
              subjects.subject_for("u-123", portal("https://a.example/cb"), "x" * 64)}
    assert a not in others and len(others) == 4 and "u-123" not in a
    # base64url of an HMAC-SHA256, unpadded: 43 URL-safe characters (a valid sub, <= 255 ASCII)
    assert len(a) == 43 and a.replace("-", "").replace("_", "").isalnum()


SHOP = "https://shop.example/cb"


@pytest.mark.parametrize("before,after,new", [
    # (before, after, does every user get a new sub?)
    (portal(SHOP, subject_type="public"), portal(SHOP, subject_type="pairwise"), True),
    (portal(SHOP), portal(SHOP, subject_type="public"), True),
    (portal(SHOP), portal("https://clinic.example/cb"), True),  # another sector host
    (portal(SHOP), portal(SHOP, sector_uri="https://ids.example/sector.json"), True),
    (portal(SHOP, sector_uri="https://ids.example/s.json"),
     portal(SHOP, sector_uri="https://ids.example/other.json"), False),  # same sector host
    (portal(SHOP), portal(SHOP, "https://shop.example/other"), False),  # same host
    (portal(SHOP), portal(SHOP), False),  # nothing changes
    # A public client's sub has no sector: its redirect URIs and sector URI change nothing.
    (portal(SHOP, subject_type="public"),
     portal("https://clinic.example/cb", subject_type="public",
            sector_uri="https://ids.example/s.json"), False),
    (portal(SHOP, subject_type=None), portal(SHOP, subject_type="public"), False),  # None: public
])
def test_a_new_subject_type_or_a_pairwise_clients_new_sector_gives_new_subs(before, after, new):
    assert subjects.new_subjects(before, after) is new
