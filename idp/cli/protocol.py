"""``idp protocol show|set SLUG``: what a tenant asks of its portals beyond the defaults (PAR
for every authorization request, a nonce in DPoP proofs, the hosts self-registered portals
may send people to), as the console's Portal security page edits them."""

from __future__ import annotations

from idp.cli.common import CLIError, on_off
from idp.config import Settings


def protocol_show(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import protocol
    from idp.installation import database

    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        return {"tenant": tenant.slug, **protocol.as_dict(protocol.settings(session, tenant.id))}


def protocol_set(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import protocol
    from idp.installation import database

    hosts = args.registration_redirect_host
    if args.no_registration_redirect_hosts:
        if hosts:
            raise CLIError("give --registration-redirect-host or "
                           "--no-registration-redirect-hosts, not both")
        hosts = []
    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        try:
            after = protocol.update(session, tenant.id, "cli",
                                    require_par=on_off(args.require_par),
                                    dpop_nonce_required=on_off(args.dpop_nonce),
                                    registration_redirect_hosts=hosts)
        except protocol.ProtocolRefused as refused:
            raise CLIError(str(refused)) from None
        return {"tenant": tenant.slug, **protocol.as_dict(after)}


def add_commands(verbs: dict) -> None:
    sp = verbs["protocol"].add_parser("show", help="the tenant's protocol settings (JSON)")
    sp.add_argument("slug")
    sp.set_defaults(func=protocol_show)
    sp = verbs["protocol"].add_parser("set", help="change what is given; the rest stays")
    sp.add_argument("slug")
    sp.add_argument("--require-par", choices=["on", "off"],
                    help="every portal must use pushed authorization requests (RFC 9126)")
    sp.add_argument("--dpop-nonce", choices=["on", "off"],
                    help="DPoP proofs must carry a nonce from this server (RFC 9449 8)")
    sp.add_argument("--registration-redirect-host", action="append", metavar="HOST",
                    help="a host self-registered portals may send people to: portal.example.com "
                         "or *.example.com (repeatable; replaces the list)")
    sp.add_argument("--no-registration-redirect-hosts", action="store_true",
                    help="remove every host (self-registered portals follow the usual rules)")
    sp.set_defaults(func=protocol_set)
