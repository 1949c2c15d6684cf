"""Which addresses a request to an administrator's URI may reach (``idp.outbound``), and
which installations may call private ones (``Settings.calls_private_addresses``)."""

from __future__ import annotations

import pytest

from idp.config import Settings
from idp.outbound import is_public


@pytest.mark.parametrize("address", [
    "127.0.0.1", "10.1.2.3", "172.16.0.9", "192.168.1.1", "169.254.169.254", "100.64.0.1",
    "0.0.0.0", "::1", "fe80::1", "fd00::5", "::ffff:10.0.0.1", "::ffff:127.0.0.1", "224.0.0.1",
    "ff02::1", "not an address",
    # IPv6 forms that carry a private IPv4 address: NAT64, 6to4, IPv4-compatible, local NAT64.
    "64:ff9b::a9fe:a9fe", "64:ff9b::7f00:1", "2002:7f00:1::1", "::7f00:1", "64:ff9b:1::8.8.8.8",
])
def test_private_and_special_addresses_are_not_public(address):
    assert not is_public(address)


@pytest.mark.parametrize("address", ["93.184.215.14", "2606:2800:21f:cb07:6820:80da:af6b:8b2c",
                                     "::ffff:93.184.215.14", "64:ff9b::5db8:d70e"])
def test_internet_addresses_are_public(address):
    assert is_public(address)


@pytest.mark.parametrize("base_url,env,allowed", [
    ("https://id.example.com", {}, False),
    ("http://127.0.0.1:5000", {}, True),
    ("http://localhost:8000", {}, True),
    ("https://id.example.com", {"IDP_PRIVATE_CALLBACKS": "allow"}, True),
    ("http://127.0.0.1:5000", {"IDP_PRIVATE_CALLBACKS": "deny"}, False),
])
def test_only_a_loopback_installation_calls_private_addresses_unless_told(base_url, env, allowed):
    settings = Settings.from_env({**env, "IDP_BASE_URL": base_url}, secret_key="x" * 32)
    assert settings.calls_private_addresses is allowed


def test_a_wrong_setting_is_refused_plainly():
    with pytest.raises(ValueError, match="IDP_PRIVATE_CALLBACKS is allow or deny"):
        Settings.from_env({"IDP_PRIVATE_CALLBACKS": "yes"}, secret_key="x" * 32)
