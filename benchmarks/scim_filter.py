"""SCIM list with a filter at 100,000 users, on PostgreSQL and Redis: the whole request
``GET {issuer}/scim/v2/Users?filter=...`` (bearer check, SQL, a page of resources as JSON).

    .venv/bin/python benchmarks/scim_filter.py \\
        [--database-url postgresql://postgres@127.0.0.1:5432/test] \\
        [--redis-url redis://127.0.0.1:6379/6] [--users 100000] [--runs 30] [--count 100]

It creates a fresh database ``idp_bench_<random>`` beside ``--database-url`` (as
``console_users.py``), fills one tenant with ``--users`` users in bulk (SQLAlchemy core
inserts: ``user<i>@example.com``, ``externalId`` ``hr-<i>``, given and family names, 0.1%
deactivated, five groups holding 60% of them), registers a service for ``users:provision``,
times each filter ``--runs`` times after one warm-up through the Flask test client, prints
the median and the p95 in ms with PASS/FAIL against the issue's 50 ms, and drops the database.
See benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.engine import make_url

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.console_users import BATCH, p95, scratch_app, timed  # noqa: E402
from idp import db as idp_db, directory  # noqa: E402
from idp.models import Group, User, user_groups  # noqa: E402
from idp.models.base import new_public_id, utcnow  # noqa: E402

BUDGET_MS = 50.0
GROUPS = ("Engineering", "Sales", "Support", "Finance", "Operations")


def seed(app, n_users: int) -> dict:
    started = time.perf_counter()
    with app.app_context():
        session = idp_db.session()
        tenant = directory.create_tenant(session, "bench", "Benchmark Inc.")
        service = directory.create_client(session, tenant, "HR system", [],
                                          grant_types=["client_credentials"],
                                          scope="users:provision")
        for name in GROUPS:
            session.add(Group(tenant_id=tenant.id, name=name))
        session.commit()
        tenant_id, client_id, secret = tenant.id, service.client.client_id, service.secret
        group_ids = list(session.scalars(sa.select(Group.id).where(Group.tenant_id == tenant_id)
                                          .order_by(Group.id)))
        now = utcnow()
        engine = app.extensions["idp.engine"]
        with engine.begin() as conn:
            for start in range(0, n_users, BATCH):
                conn.execute(sa.insert(User.__table__), [
                    {"tenant_id": tenant_id, "subject": new_public_id(),
                     "email": f"user{i}@example.com", "name": f"User {i}",
                     "given_name": "User", "family_name": f"Family{i}",
                     "external_id": f"hr-{i}", "role": "member", "password_hash": None,
                     "mfa_admin_state": "default",
                     "status": "deactivated" if i % 1000 == 5 else "active",
                     "mfa_must_reenroll": False, "mfa_skips_used": 0, "created_at": now}
                    for i in range(start, min(start + BATCH, n_users))])
            ids = list(conn.execute(sa.select(User.id, User.subject)
                                    .where(User.tenant_id == tenant_id).order_by(User.id)))
            members = [{"user_id": uid, "group_id": group_ids[k % len(group_ids)]}
                       for k, (uid, _) in enumerate(ids) if k % 10 < 6]
            for start in range(0, len(members), BATCH):
                conn.execute(sa.insert(user_groups), members[start:start + BATCH])
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))  # as autovacuum would after a bulk load
    return {"slug": "bench", "client_id": client_id, "secret": secret,
            "member": ids[4242][1], "group": GROUPS[1], "seconds": time.perf_counter() - started}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test",
                        help="a PostgreSQL server (a fresh database is created beside it)")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=30)
    parser.add_argument("--count", type=int, default=100, help="the page size asked for")
    args = parser.parse_args(argv)
    if not args.database_url.startswith("postgresql"):
        raise SystemExit("the benchmark measures PostgreSQL: give a postgresql:// URL")

    results: list[tuple[str, int, list[float], bool]] = []
    with scratch_app(args.database_url, args.redis_url) as (app, url):
        print(f"seeding {args.users:,} users into {make_url(url).database} ...", flush=True)
        info = seed(app, args.users)
        print(f"seeded in {info['seconds']:.1f} s", flush=True)
        client = app.test_client()
        basic = base64.b64encode(f"{info['client_id']}:{info['secret']}".encode()).decode()
        r = client.post("/t/bench/token", headers={"Authorization": f"Basic {basic}"},
                        data={"grant_type": "client_credentials", "scope": "users:provision"})
        if r.status_code != 200:
            raise SystemExit(f"no token: {r.status_code} {r.get_data(as_text=True)}")
        bearer = {"Authorization": f"Bearer {r.get_json()['access_token']}"}

        def get(path: str, filter_: str | None, extra: str = ""):
            query = (f"?count={args.count}" + (f"&filter={quote(filter_)}" if filter_ else "")
                     + extra)
            found = {}

            def run():
                r = client.get(f"/t/bench/scim/v2/{path}{query}", headers=bearer)
                if r.status_code != 200:
                    raise SystemExit(f"{path} {filter_!r} answered {r.status_code}: "
                                     f"{r.get_data(as_text=True)[:300]}")
                found["total"] = r.get_json()["totalResults"]
            return run, found

        n = args.users
        # (endpoint, filter, more of the query, within the budget): the filters an index
        # serves, then for reference those that match (nearly) every user, whose count of
        # matches (totalResults) reads the whole tenant.
        no_members = "&excludedAttributes=members"
        cases = [
            ("Users", 'userName eq "user4242@example.com"', "", True),
            ("Users", 'externalId eq "hr-4242"', "", True),
            ("Users", 'userName sw "user12"', "", True),
            ("Users", 'userName sw "user4242" and active eq true', "", True),
            ("Users", 'emails.value co "er4242"', "", True),
            ("Users", 'displayName co "User 4242"', "", True),
            ("Groups", f'displayName eq "{info["group"]}"', no_members, True),
            ("Groups", f'members eq "{info["member"]}"', no_members, True),
            ("Users", None, "", False),
            ("Users", 'active eq true and emails.value co "example"', "", False),
            ("Users", 'userName sw "user4" and active eq true', "", False),
        ]
        for path, filter_, extra, budget in cases:
            run, found = get(path, filter_, extra)
            samples = timed(run, args.runs)
            results.append((f"GET /{path}" + (f"?filter={filter_}" if filter_ else " (no filter)")
                            + extra, found["total"], samples, budget))

    width = max(len(name) for name, _, _, _ in results)
    print(f"\n{n:,} users · PostgreSQL + Redis · count={args.count} · median and p95 in ms")
    print(f"{'case':<{width}}  {'matches':>7}  {'median':>7}  {'p95':>7}  verdict")
    failed = False
    for name, total, samples, budget in results:
        med, top = statistics.median(samples), p95(samples)
        failed |= budget and top >= BUDGET_MS
        verdict = (("PASS" if top < BUDGET_MS else "FAIL") + f" (< {BUDGET_MS:.0f} ms)"
                   if budget else "— (reference)")
        print(f"{name:<{width}}  {total:>7}  {med:>7.1f}  {top:>7.1f}  {verdict}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
