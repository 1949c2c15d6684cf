"""The one answer to "which ``sub`` does this client see of this user?" (OIDC Core 8), with
the installation's secret: every place a user's ``sub`` reaches a client asks it (the ID
token and userinfo, the access token, introspection, ``id_token_hint`` at /authorize and
/logout). The rule is ``idp.subjects``'s; the admin API, SCIM and webhooks keep the public id.
"""

from __future__ import annotations

from idp import subjects
from idp.web import settings


def for_client(user, client) -> str:
    """The ``sub`` ``client`` (a ``Client`` row or a ``ClientRef``) sees of ``user`` (anything
    with the public ``subject``)."""
    return subjects.subject_for(user.subject, client, settings().secret_key)
