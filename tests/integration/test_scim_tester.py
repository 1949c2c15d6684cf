"""scim2-tester against the live server: every check it has for what our
``ServiceProviderConfig`` declares (discovery, create, read, list with ``attributes``, replace,
delete, PATCH add/remove/replace on each attribute) passes, for Users and Groups."""

from __future__ import annotations

import uuid

import httpx2
from scim2_client.engines.httpx2 import SyncSCIMClient
from scim2_tester import Status, check_server

from tests.support.scim import grant_scope, token_live


class FreshAddresses:
    """The values scim2-tester picks a ``userName`` from (it takes a field's examples, when
    it has some, over a random string): a new address each time, as our ``userName`` is the
    sign-in address."""

    def __len__(self):
        return 1_000_000

    def __getitem__(self, index):
        return f"{uuid.uuid4().hex}@example.com"


def test_scim2_tester_passes_every_check(app, live_world):
    grant_scope(app, live_world)
    http = httpx2.Client(base_url=f"{live_world.issuer}/scim/v2",
                         headers={"Authorization": f"Bearer {token_live(live_world)}"},
                         timeout=20)
    client = SyncSCIMClient(http)
    client.discover()  # the models the server publishes, which the tester then uses
    client.get_resource_model("User").model_fields["user_name"].examples = FreshAddresses()
    results = check_server(client)
    failed = [r for r in results if r.status in (Status.ERROR, Status.CRITICAL)]
    assert not failed, "\n".join(f"{r.title} [{r.resource_type}]: {r.reason}" for r in failed)
    ran = {(r.title, r.resource_type) for r in results if r.status == Status.SUCCESS}
    # What our configuration declares was exercised, for both resource types, not skipped.
    for kind in ("User", "Group"):
        for check in ("object_creation", "object_query", "object_query_without_id",
                      "object_replacement", "object_deletion", "check_add_attribute",
                      "check_remove_attribute", "check_replace_attribute",
                      "object_query_with_attributes", "object_list_with_attributes"):
            assert (check, kind) in ran, (check, kind)
