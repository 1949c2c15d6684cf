"""The tenant's registration redirect-host patterns (``client_metadata.host_allowed``): an exact
host, or "*.example.com" for its sub-domains only."""

from idp.oidc.client_metadata import host_allowed


def test_an_exact_host_matches_itself_only():
    assert host_allowed("portal.example.com", ["portal.example.com"])
    assert host_allowed("Portal.Example.COM.", ["portal.example.com"])
    assert not host_allowed("sub.portal.example.com", ["portal.example.com"])
    assert not host_allowed("portal.example.com.evil.test", ["portal.example.com"])


def test_a_wildcard_matches_sub_domains_not_the_domain():
    assert host_allowed("a.example.com", ["*.example.com"])
    assert host_allowed("a.b.example.com", ["*.example.com"])
    assert not host_allowed("example.com", ["*.example.com"])
    assert not host_allowed("evilexample.com", ["*.example.com"])
    assert not host_allowed("a.example.com.evil.test", ["*.example.com"])


def test_no_pattern_matches_nothing():
    assert not host_allowed("a.example.com", [])
