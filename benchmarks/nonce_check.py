"""The nonce replay check when a portal has many codes kept, on PostgreSQL and Redis.

    .venv/bin/python benchmarks/nonce_check.py \\
        [--database-url postgresql://postgres@127.0.0.1:5432/test] \\
        [--redis-url redis://127.0.0.1:6379/6] [--codes 200000] [--runs 50]

Every authorization request with a nonce asks whether one of the client's codes already bound
it (a replayed request is refused). Codes are kept until `idp tokens purge` deletes them, a day
after they expire, so a busy portal has a day of codes. This creates a fresh database
``idp_bench_<random>`` beside ``--database-url``, migrates it, gives one portal ``--codes``
codes with random nonces (bulk inserts, as `save_authorization_code` writes them, then
``ANALYZE``), and times, ``--runs`` times after a warm-up:

- the check as it was before migration 0007 (the nonce compared over the client's codes), a
  read that every authorization request made until migration 0011;
- a whole authorization request of a signed-in user through the Flask test client, which
  issues a code: since migration 0011 nothing is read for the nonce, the unique index on
  (client, nonce digest) refuses a second code as it is inserted;
- the same request replaying a nonce a code bound: refused (``invalid_request``) by that index.

It prints the median and p95 in ms and PostgreSQL's plan of each check, then drops the
database. See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import secrets
import statistics
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_users import PASSWORD, p95, scratch_app, sign_in, timed  # noqa: E402
from idp import admin, db as idp_db, directory  # noqa: E402
from idp.models import AuthorizationCode  # noqa: E402
from idp.models.base import utcnow  # noqa: E402
from idp import hashing  # noqa: E402
from idp.oidc.id_token import nonce_digest  # noqa: E402
from tests.support.journey import pkce_pair  # noqa: E402

BATCH = 10_000
REDIRECT_URI = "https://portal.bench/cb"


def seed(app, n_codes: int) -> dict:
    """One tenant (MFA disabled: the admin signs in with a password), one portal, and
    ``n_codes`` codes of that portal, used and expired as most kept codes are."""
    with app.app_context():
        session = idp_db.session()
        tenant = directory.create_tenant(session, "bench", "Benchmark Inc.")
        admin.policy_row(session, tenant).mode = "disabled"
        user = directory.create_user(session, app.extensions["idp.passwords"], tenant,
                                     "admin@bench.example", PASSWORD, name="Bench Admin",
                                     role="admin")
        portal = directory.create_client(session, tenant, "Portal", [REDIRECT_URI])
        session.commit()
        ids = {"tenant_id": tenant.id, "slug": tenant.slug, "client_pk": portal.client.id,
               "client_id": portal.client.client_id, "user_id": user.id}
    now = utcnow()
    nonces = [secrets.token_urlsafe(16) for _ in range(n_codes)]
    engine = app.extensions["idp.engine"]
    with engine.begin() as conn:
        for start in range(0, n_codes, BATCH):
            conn.execute(sa.insert(AuthorizationCode.__table__), [
                {"tenant_id": ids["tenant_id"], "client_pk": ids["client_pk"],
                 "user_id": ids["user_id"], "code_hash": hashing.digest("code", f"c{i}"),
                 "redirect_uri": REDIRECT_URI, "scope": "openid", "nonce": nonce,
                 "nonce_hash": nonce_digest(nonce), "auth_time": 0, "acr": "pwd",
                 "amr": ["pwd"], "created_at": now, "expires_at": now, "used_at": now}
                for i, nonce in enumerate(nonces[start:start + BATCH], start)])
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE"))  # as autovacuum would soon after a bulk load
    return {**ids, "spent": nonces[len(nonces) // 2]}


def plan(conn, query) -> str:
    """The access path PostgreSQL picks for ``query`` (the scan lines of EXPLAIN)."""
    compiled = query.compile(conn, compile_kwargs={"literal_binds": True})
    lines = conn.scalars(sa.text(f"EXPLAIN {compiled}")).all()
    return "; ".join(line.strip().lstrip("-> ").split("  (")[0] for line in lines
                     if "Scan" in line)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server (a fresh database is created beside it)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--codes", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("the benchmark measures PostgreSQL: give a postgresql:// URL")

    results: list[tuple[str, list[float]]] = []
    with scratch_app(args.database_url, args.redis_url) as (app, url):
        print(f"seeding {args.codes:,} codes into {make_url(url).database} ...", flush=True)
        info = seed(app, args.codes)
        fresh = secrets.token_urlsafe(16)  # bound to no code: the check reads to the end
        before = (sa.select(AuthorizationCode.id)
                  .where(AuthorizationCode.nonce == fresh,
                         AuthorizationCode.client_pk == info["client_pk"]).limit(1))
        now_query = (sa.select(AuthorizationCode.id)
                     .where(AuthorizationCode.client_pk == info["client_pk"],
                            AuthorizationCode.nonce_hash == nonce_digest(fresh),
                            AuthorizationCode.nonce == fresh).limit(1))
        with app.extensions["idp.engine"].connect() as conn:
            plans = {"as it was": plan(conn, before),
                     "of the unique index (the INSERT's conflict check)": plan(conn, now_query)}
        with app.test_request_context():
            session = idp_db.session()

            def as_it_was():  # the same session and transaction, the statement of before
                if session.scalar(before) is not None:
                    raise SystemExit("a fresh nonce was found")
                session.rollback()

            results.append(("check as it was (nonce over the client's codes)",
                            timed(as_it_was, args.runs)))

        client = sign_in(app, info["slug"])

        def authorize(nonce=None, answer="code"):
            verifier, challenge = pkce_pair()
            r = client.get(f"/t/{info['slug']}/authorize", query_string={
                "response_type": "code", "client_id": info["client_id"],
                "redirect_uri": REDIRECT_URI, "scope": "openid", "state": "s",
                "nonce": nonce or secrets.token_urlsafe(16), "code_challenge": challenge,
                "code_challenge_method": "S256"})
            got = parse_qs(urlsplit(r.location or "").query)
            if r.status_code != 302 or answer not in got:
                raise SystemExit(f"the authorization request answered {r.status_code} {got}")

        results.append(("HTTP GET /authorize (signed in, code issued)",
                        timed(authorize, args.runs)))
        results.append(("HTTP GET /authorize replaying a bound nonce (refused)",
                        timed(lambda: authorize(info["spent"], "error"), args.runs)))

    width = max(len(name) for name, _ in results)
    print(f"\n{args.codes:,} codes of one portal · PostgreSQL + Redis · median and p95 in ms")
    print(f"{'case':<{width}}  {'runs':>4}  {'median':>8}  {'p95':>8}")
    for name, samples in results:
        print(f"{name:<{width}}  {len(samples):>4}  {statistics.median(samples):>8.2f}  "
              f"{p95(samples):>8.2f}")
    for name, text in plans.items():
        print(f"plan {name}: {text}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
