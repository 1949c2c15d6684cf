"""Pushed authorization requests as the store keeps them (RFC 9126): ``push`` one, ``take`` it.

A pushed request waits in the shared store under a random ``request_uri`` for ``EXPIRES_IN``
seconds, and is taken once: GETDEL reads and deletes it in one step, so of two uses of the
same ``request_uri`` (a reload, a replay) only one finds it (RFC 9126 4: "one-time use").
After that the sign-in goes on in its own login transaction, never from here again.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass

from idp import store

URN = "urn:ietf:params:oauth:request_uri:"
# Long enough for a browser to follow a redirect, short enough that a leaked one is of no
# use (RFC 9126 2.2 suggests 5 to 600 seconds).
EXPIRES_IN = 60


class PushedRequestGone(LookupError):
    """No such pushed request: never made, used already, or expired."""


@dataclass(frozen=True)
class PushedRequest:
    client_id: str
    params: dict


def _key(tenant_id: int, reference: str) -> str:
    return f"par:{tenant_id}:{reference}"


def is_ours(request_uri: str) -> bool:
    return request_uri.startswith(URN)


def push(tenant_id: int, client_id: str, params: dict) -> str:
    """Keep ``params`` (a validated request of ``client_id``); its ``request_uri``."""
    reference = secrets.token_urlsafe(32)
    store.get().set(_key(tenant_id, reference),
                    json.dumps({"client_id": client_id, "params": params}), ex=EXPIRES_IN)
    return URN + reference


def take(tenant_id: int, request_uri: str, client_id: str) -> PushedRequest:
    """The pushed request, removed as it is read; a request another client pushed is only
    read (its ``client_id`` tells), so a stranger's try does not spend the rightful use."""
    reference = request_uri[len(URN):] if is_ours(request_uri) else ""
    if not reference or len(reference) > 64:
        raise PushedRequestGone()
    raw = store.get().get(_key(tenant_id, reference))
    if raw and json.loads(raw)["client_id"] != client_id:
        data = json.loads(raw)
        return PushedRequest(data["client_id"], data["params"])
    raw = store.get().getdel(_key(tenant_id, reference))
    if not raw:
        raise PushedRequestGone()
    data = json.loads(raw)
    return PushedRequest(data["client_id"], data["params"])
