"""What a DPoP proof (RFC 9449) adds to a client-credentials token request, in one process.

    .venv/bin/python benchmarks/dpop_token.py \\
        [--database-url postgresql://postgres@127.0.0.1:5432/test] \\
        [--redis-url redis://127.0.0.1:6379/6] [--runs 2000]

Creates a fresh database ``idp_bench_<random>`` beside ``--database-url`` (dropped at the
end), one tenant and one service, and times, ``--runs`` times after a warm-up, each through
Flask's test client (so ``idp.oidc.direct``, the path the token endpoint takes in production):

- client credentials with HTTP Basic, as today;
- the same with a fresh ES256 DPoP proof per request (made beforehand, with joserfc, as a
  client would: signing is the client's cost, not ours): the token is DPoP-bound;
- ``idp.oidc.dpop.check`` alone on such proofs, with the jti stored in Redis.

It prints the median and p95 in ms and what the median makes per second on one core. See
benchmarks/README.md.
"""

from __future__ import annotations

import argparse
import base64
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from console_users import p95, scratch_app  # noqa: E402
from flask import g  # noqa: E402

from idp import db as idp_db, directory, web  # noqa: E402
from idp.oidc import dpop  # noqa: E402
from tests.support.dpop import Holder  # noqa: E402


def timed_each(fn, items) -> list[float]:
    fn(items[0])  # warm-up
    out = []
    for item in items[1:]:
        t = time.perf_counter()
        fn(item)
        out.append((time.perf_counter() - t) * 1000)
    return out


def report(label: str, samples: list[float]) -> None:
    median = statistics.median(samples)
    print(f"{label:<44} median {median:6.3f} ms   p95 {p95(samples):6.3f} ms   "
          f"~{1000 / median:,.0f}/s")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/6")
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args(argv)
    warnings.simplefilter("ignore")  # joserfc's notes on the algorithms the proofs use
    logging.disable(logging.INFO)  # the access log: a line a request is not what is measured
    with scratch_app(args.database_url, args.redis_url) as (app, _):
        with app.app_context():
            session = idp_db.session()
            tenant = directory.create_tenant(session, "bench", "Benchmark Inc.")
            made = directory.create_client(session, tenant, "Service", [],
                                           grant_types=["client_credentials"])
            session.commit()
        client = app.test_client()
        basic = "Basic " + base64.b64encode(
            f"{made.client.client_id}:{made.secret}".encode()).decode()
        url = "http://idp.bench/t/bench/token"
        holder = Holder("ES256")

        def token(proof):
            headers = {"Authorization": basic}
            if proof:
                headers["DPoP"] = proof
            answer = client.post("/t/bench/token", data={"grant_type": "client_credentials"},
                                 headers=headers)
            assert answer.status_code == 200, answer.get_json()
            assert answer.get_json()["token_type"] == ("DPoP" if proof else "Bearer")

        report("client credentials (Bearer)", timed_each(token, [None] * (args.runs + 1)))
        proofs = [holder.proof("POST", url) for _ in range(args.runs + 1)]
        report("client credentials + DPoP proof (ES256)", timed_each(token, proofs))
        with app.test_request_context():
            g.tenant = web._load_tenant("bench")
            checks = [holder.proof("POST", url) for _ in range(args.runs + 1)]
            report("dpop.check alone (ES256, jti to Redis)",
                   timed_each(lambda p: dpop.of_request([p], "POST", url), checks))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
