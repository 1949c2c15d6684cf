"""``idp keys rotate`` and ``idp tokens purge``: what an operator runs now and then, or from
cron."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from idp.cli.common import CLIError
from idp.config import Settings


def keys_rotate(settings: Settings, args) -> dict:
    """New keys for one tenant (SLUG) or for each, on the publish-then-sign schedule."""
    from sqlalchemy import select

    from idp import directory
    from idp.installation import database
    from idp.models import Tenant
    from idp.oidc import keys

    with database(settings) as session:
        if args.slug:  # an unknown one: directory.NotFound, one line (idp.cli.main)
            tenants = [directory.get_tenant(session, args.slug)]
        else:
            tenants = list(session.scalars(select(Tenant).order_by(Tenant.slug)))
        tenants = [(t.id, t.slug) for t in tenants]
    keyrings = keys.Keyrings.from_settings(settings)
    rotated = []
    for tenant_id, slug in tenants:
        created = keyrings.rotate(tenant_id, ahead=0 if args.now else keys.JWKS_MAX_AGE)
        rotated.append({
            "tenant": slug, "keys": {k.alg: k.kid for k in created},
            "signing_from": datetime.fromtimestamp(created[0].active_from, timezone.utc)
            .isoformat(timespec="seconds"),
        })
    return {"rotated": rotated, "published_now": True}


def tokens_purge(settings: Settings, args) -> dict:
    from idp.installation import database
    from idp.oidc import retention

    if args.grace_hours < 0:
        raise CLIError("--grace-hours is 0 or more")
    with database(settings) as session:
        return {"deleted": retention.purge(session, timedelta(hours=args.grace_hours)),
                "expired_before_hours": args.grace_hours}


def add_commands(verbs: dict) -> None:
    sp = verbs["keys"].add_parser("rotate", help="new signing keys for a tenant (or each): "
                                                 "published now, signing in 5 minutes (when "
                                                 "every cached JWKS has them)")
    sp.add_argument("slug", nargs="?", help="the tenant (default: every tenant)")
    sp.add_argument("--now", action="store_true",
                    help="sign with the new keys at once (a key that leaked)")
    sp.set_defaults(func=keys_rotate)
    sp = verbs["tokens"].add_parser("purge", help="delete tokens, codes, login tokens, "
                                                  "mailed links and remembered browsers "
                                                  "that expired, and old mail "
                                                  "(run it from cron: rotation adds a row per "
                                                  "refresh)")
    sp.add_argument("--grace-hours", type=float, default=24.0,
                    help="keep what expired less than this long ago (default 24)")
    sp.set_defaults(func=tokens_purge)
