"""The store's namespace (issue 16, finding 9): whatever path a command takes (a call, a
pipeline, a Lua script, pub/sub, SCAN), its keys and channels are the installation's; a
command whose keys the store cannot place is refused, never sent bare."""

from __future__ import annotations

import pytest
import redis

from idp import store
from idp.config import Settings


@pytest.fixture
def ours():
    client = store.connect(Settings(redis_prefix="acme"))
    yield client
    client.close()


@pytest.fixture
def bare(ours):
    """The same server seen without a namespace, as another installation would."""
    return redis.Redis(connection_pool=ours.connection_pool)


def test_every_way_of_writing_lands_under_the_prefix(ours, bare):
    ours.set("guard:1:user:1", 5, ex=60)
    with ours.pipeline() as pipe:
        pipe.sadd("sso-user:1", "sid")
        pipe.expire("sso-user:1", 60)
        pipe.execute()
    ours.eval("redis.call('SET', KEYS[1], ARGV[1], 'EX', 60)", 1, "totp-used:1", "42")
    ours.mset({"a": "1", "b": "2"})

    assert sorted(bare.keys("*")) == ["acme:a", "acme:b", "acme:guard:1:user:1",
                                      "acme:sso-user:1", "acme:totp-used:1"]
    assert ours.get("guard:1:user:1") == "5" and ours.mget(["a", "b"]) == ["1", "2"]
    assert bare.get("guard:1:user:1") is None  # another installation's user 1 is not locked
    assert sorted(ours.scan_iter("*")) == ["a", "b", "guard:1:user:1", "sso-user:1", "totp-used:1"]
    bare.set("guard:1:user:1", 9)
    assert sorted(ours.scan_iter("guard:*")) == ["guard:1:user:1"]  # only ours


def test_messages_travel_on_the_installations_channel(ours, bare):
    listener = ours.pubsub()
    listener.subscribe("config-generation")
    assert listener.get_message(timeout=1)["channel"] == "config-generation"
    bare.publish("config-generation", "7")  # another installation's bump
    ours.eval("redis.call('PUBLISH', KEYS[1], ARGV[1])", 1, "config-generation", "8")
    message = listener.get_message(timeout=1)
    assert (message["channel"], message["data"]) == ("config-generation", "8")
    assert listener.get_message(timeout=0.1) is None
    listener.close()


def test_a_command_the_store_cannot_place_is_refused(ours, bare):
    bare.set("other", "theirs")
    with pytest.raises(store.UnprefixedCommand):
        ours.flushdb()
    with pytest.raises(store.UnprefixedCommand):
        ours.rename("a", "b")
    assert bare.get("other") == "theirs"


def test_an_empty_prefix_keeps_the_bare_names():
    client = store.connect(Settings(redis_prefix=""))
    client.set("ltx:1", "x")
    assert redis.Redis(connection_pool=client.connection_pool).keys("*") == ["ltx:1"]
    with pytest.raises(store.UnprefixedCommand):  # refused in every configuration
        client.flushdb()
