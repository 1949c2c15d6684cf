"""The demo portal (``examples/portal``, Authlib's Flask client, ID tokens checked against
JWKS) registered at a tenant of a live server and served on a loopback port, for browser walks
through a real relying party on the test backend."""

from __future__ import annotations

import secrets
import threading
from dataclasses import dataclass

from werkzeug.serving import make_server

from examples.portal.app import create_portal_app
from idp import db, directory
from tests.support.ports import free_port


@dataclass
class Portal:
    url: str
    server: object

    def stop(self) -> None:
        self.server.shutdown()


def serve_portal(app, world) -> Portal:
    """Register a confidential client for the portal at ``world``'s tenant and serve it."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with app.app_context():
        session = db.session()
        new = directory.create_client(session, directory.get_tenant(session, world.slug),
                                      "Team portal", [f"{url}/callback"],
                                      post_logout_redirect_uris=[f"{url}/"])
        session.commit()
        client_id, secret = new.client.client_id, new.secret
    portal = create_portal_app(issuer=world.issuer, client_id=client_id, client_secret=secret,
                               base_url=url, secret_key=secrets.token_hex(16))
    server = make_server("127.0.0.1", port, portal, threaded=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return Portal(url, server)
