"""``idp registration-token create|list|revoke SLUG ...``: the initial access tokens with which a
portal's developers register their portals themselves (RFC 7591, ``{issuer}/register``)."""

from __future__ import annotations

from datetime import datetime

from idp.cli.common import CLIError
from idp.config import Settings


def _expires(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        raise CLIError(f"--expires {value!r} is not a date (2027-01-31 or "
                       "2027-01-31T12:00:00+00:00)") from None


def token_create(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import registration_tokens
    from idp.installation import database

    expires_at = _expires(args.expires)
    with database(settings) as session:
        issued = registration_tokens.create(
            session, directory.get_tenant(session, args.slug), "cli", args.name,
            expires_in_days=args.expires_in, expires_at=expires_at, uses=args.uses)
        return {**registration_tokens.as_dict(issued.row), "token": issued.token,
                "registration_endpoint": f"{settings.base_url}/t/{args.slug}/register"}


def token_list(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import registration_tokens
    from idp.installation import database

    with database(settings) as session:
        rows = registration_tokens.listed(session, directory.get_tenant(session, args.slug))
        return {"tenant": args.slug, "items": [registration_tokens.as_dict(r) for r in rows]}


def token_revoke(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import registration_tokens
    from idp.installation import database

    with database(settings) as session:
        row = registration_tokens.revoke(session, directory.get_tenant(session, args.slug),
                                         args.id, "cli")
        return registration_tokens.as_dict(row)


def add_commands(verbs: dict) -> None:
    sp = verbs["registration-token"].add_parser(
        "create", help="an initial access token for {issuer}/register; printed once")
    sp.add_argument("slug")
    sp.add_argument("--name", required=True, help="who the token is for")
    when = sp.add_mutually_exclusive_group()
    when.add_argument("--expires-in", type=int, metavar="DAYS", help="expires after DAYS days")
    when.add_argument("--expires", metavar="DATE", help="expires at DATE (ISO 8601, UTC unless "
                                                        "it says otherwise)")
    sp.add_argument("--uses", type=int, metavar="N", help="registers at most N clients "
                                                          "(default: any number)")
    sp.set_defaults(func=token_create)
    sp = verbs["registration-token"].add_parser("list", help="the tenant's tokens (never the "
                                                             "token itself)")
    sp.add_argument("slug")
    sp.set_defaults(func=token_list)
    sp = verbs["registration-token"].add_parser("revoke", help="the token registers nothing more")
    sp.add_argument("slug")
    sp.add_argument("id")
    sp.set_defaults(func=token_revoke)
