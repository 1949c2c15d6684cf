"""``idp webhook create|list|rotate|delete SLUG ...``: a tenant's webhook endpoints.

``create`` and ``rotate`` print the signing secret once (``whsec_...``): it is stored
encrypted and never shown again. Events and payloads: README, "Webhooks".
"""

from __future__ import annotations

from idp.config import Settings


def _out(endpoint, secret: str | None = None) -> dict:
    found = {"id": endpoint.public_id, "url": endpoint.url, "description": endpoint.description,
             "event_types": list(endpoint.event_types) or "all", "enabled": endpoint.enabled,
             "disabled_reason": endpoint.disabled_reason,
             "previous_secret_until": endpoint.previous_until.isoformat()
             if endpoint.previous_secret and endpoint.previous_until else None,
             "created_at": endpoint.created_at.isoformat()}
    if secret is not None:
        found["secret"] = secret
    return found


def webhook_create(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import webhooks
    from idp.installation import database
    from idp.mfa.secrets import SecretBox

    with database(settings) as session:
        new = webhooks.create_endpoint(
            session, SecretBox(settings.secret_key), directory.get_tenant(session, args.slug),
            "cli", args.url, description=args.description or "", event_types=args.event or ())
        return _out(new.endpoint, new.secret)


def webhook_list(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import webhooks
    from idp.installation import database

    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        return {"tenant": tenant.slug,
                "endpoints": [_out(e) for e in webhooks.endpoints(session, tenant)]}


def webhook_rotate(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import webhooks
    from idp.installation import database
    from idp.mfa.secrets import SecretBox

    with database(settings) as session:
        new = webhooks.rotate_secret(session, SecretBox(settings.secret_key),
                                     directory.get_tenant(session, args.slug), args.endpoint, "cli")
        return _out(new.endpoint, new.secret)


def webhook_delete(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import webhooks
    from idp.installation import database

    with database(settings) as session:
        url = webhooks.delete_endpoint(session, directory.get_tenant(session, args.slug),
                                       args.endpoint, "cli")
        return {"deleted": args.endpoint, "url": url}


def add_commands(verbs: dict) -> None:
    sp = verbs["webhook"].add_parser("create", help="register an endpoint; prints its secret once")
    sp.add_argument("slug")
    sp.add_argument("--url", required=True, help="https://... (http only for loopback)")
    sp.add_argument("--description")
    sp.add_argument("--event", action="append", metavar="TYPE",
                    help="an event type it hears, such as user.created or signin.failed "
                         "(repeatable; default: all; README lists them)")
    sp.set_defaults(func=webhook_create)
    sp = verbs["webhook"].add_parser("list")
    sp.add_argument("slug")
    sp.set_defaults(func=webhook_list)
    sp = verbs["webhook"].add_parser(
        "rotate", help="a new secret, printed once; the old one signs too for 24 hours")
    sp.add_argument("slug")
    sp.add_argument("endpoint", help="the endpoint's id (ep_...)")
    sp.set_defaults(func=webhook_rotate)
    sp = verbs["webhook"].add_parser("delete")
    sp.add_argument("slug")
    sp.add_argument("endpoint", help="the endpoint's id (ep_...)")
    sp.set_defaults(func=webhook_delete)
