"""The database down or restarted: clear 503s, never a 500, and the next request after it is
back works without restarting the server."""

from __future__ import annotations

from dataclasses import replace

import sqlalchemy as sa

from idp import create_app
from idp import db as idp_db
from tests.support.journey import Browser
from tests.support.ports import free_port
from tests.support.rp import params_for


def test_an_unreachable_database_gets_503s_people_and_clients_understand(settings, world):
    down = f"postgresql://idp@127.0.0.1:{free_port()}/idp"  # nothing listens there
    app = create_app(replace(settings, database_url=down), TESTING=True)
    http = app.test_client()
    try:
        page = http.get(f"/t/{world.slug}/authorize", query_string=params_for(world.portal))
        assert page.status_code == 503 and page.headers["Retry-After"] == "30"
        assert "temporarily unavailable" in page.get_data(as_text=True)
        for answer in (
            http.post(f"/t/{world.slug}/token", data={"grant_type": "client_credentials"},
                      auth=(world.service.client_id, world.service.client_secret)),
            http.get(f"/t/{world.slug}/.well-known/openid-configuration"),
        ):
            assert answer.status_code == 503 and answer.headers["Retry-After"] == "30"
            assert answer.get_json()["error"] == "temporarily_unavailable"
        assert http.get("/health/ready").get_json()["checks"]["database"] == "unavailable"
    finally:
        app.extensions["idp.engine"].dispose()


class Restart:
    """Kill this app's pooled database connections underneath it, as a database restart does:
    on PostgreSQL the server ends their backends; SQLite has no server, so their files close."""

    def __init__(self, engine):
        self.engine = engine
        self.pooled = []
        sa.event.listen(engine, "checkin", lambda dbapi, _record: self.pooled.append(dbapi))

    def __call__(self):
        alive = list({id(c): c for c in self.pooled
                      if c is not None and not getattr(c, "closed", False)}.values())
        if self.engine.dialect.name == "postgresql":
            pids = {c.info.backend_pid for c in alive}
            admin = sa.create_engine(self.engine.url, poolclass=sa.pool.NullPool)  # not pooled
            with admin.connect() as c:
                for pid in pids:
                    c.execute(sa.text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
            admin.dispose()
        else:
            for c in alive:
                c.close()
        self.pooled.clear()
        return len(alive)


def test_requests_after_a_database_restart_fail_cleanly_then_recover(settings, world,
                                                                     monkeypatch):
    # However slow this machine, no connection has idled long enough to be checked first.
    monkeypatch.setattr(idp_db, "IDLE_PING_SECONDS", 3600.0)
    app = create_app(settings, TESTING=True)
    restart = Restart(app.extensions["idp.engine"])
    http = app.test_client()
    portal = (world.portal.client_id, world.portal.client_secret)
    refresh = {"grant_type": "refresh_token", "refresh_token": "not-a-refresh-token"}
    try:
        assert http.post(f"/t/{world.slug}/token", data=refresh, auth=portal).status_code == 400
        assert restart() >= 1
        # The pooled connection is dead and was used a moment ago, so it is not checked first.
        # The request that meets it answers a clean 503 the client retries, never a 500 (or,
        # when the dead connection was met before the grant began, the request is served on a
        # new one: with the embedded store nothing is cached, so the tenant's read meets it).
        first = http.post(f"/t/{world.slug}/token", data=refresh, auth=portal)
        assert (first.status_code, first.get_json()["error"]) in {
            (503, "temporarily_unavailable"), (400, "invalid_grant")}
        # The pool dropped it: the next request gets a new connection and the real answer.
        again = http.post(f"/t/{world.slug}/token", data=refresh, auth=portal)
        assert again.status_code == 400 and again.get_json()["error"] == "invalid_grant"

        # The same on a page: the password step reads the user when the database just went.
        browser = Browser(app.test_client())
        login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
        assert restart() >= 1
        page = browser.sign_in(login, world.alice, world.password, world.slug,
                               world.portal.redirect_uri)
        assert page.status == 503 and "temporarily unavailable" in page.text
        # Nothing half-done: the user starts again and signs in.
        browser = Browser(app.test_client())
        login = browser.authorize(f"/t/{world.slug}", params_for(world.portal))
        done = browser.sign_in(login, world.alice, world.password, world.slug,
                               world.portal.redirect_uri)
        assert done.status == 302 and "code=" in done.location
    finally:
        app.extensions["idp.engine"].dispose()
