"""``idp upstream add|set``: an identity provider a tenant's users may sign in with.

The client secret is given once, on standard input, and stored sealed. A discovery document
that every sign-in would refuse is refused here, before anything changes; one that cannot be
fetched yet (the upstream may not be up) is only warned about, and checked at each sign-in.
"""

from __future__ import annotations

import re
import sys

from idp.cli.common import CLIError, csv, on_off
from idp.config import Settings

# --jit: "tenant" follows the tenant's policy (idp policy set --federation-jit).
JIT_SETTING = {"tenant": None, "on": True, "off": False}


def upstream_add(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database
    from idp.mfa.secrets import SecretBox

    if not args.client_secret_stdin:
        raise CLIError("give the client secret on standard input with --client-secret-stdin")
    secret = sys.stdin.readline().strip()
    with database(settings) as session:
        upstream = admin.add_upstream(
            session, SecretBox(settings.secret_key), directory.get_tenant(session, args.slug),
            slug=args.slug_name or _slugify(args.name), name=args.name, issuer=args.issuer,
            client_id=args.client_id, client_secret=secret,
            email_domains=csv(args.email_domains) or [], trust_mfa=args.trust_mfa, actor="cli",
            trusted_acrs=args.trusted_acr or [], back_channel_hosts=args.back_channel_host or [],
            email_authoritative=args.email_authoritative == "on", jit=JIT_SETTING[args.jit],
        )
        discovery = _check_discovery(upstream)
        return _upstream_out(settings, args.slug, upstream, discovery)


def upstream_set(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    def given(value):
        return admin.KEEP if value is None else value

    with database(settings) as session:
        upstream = admin.update_upstream(
            session, directory.get_tenant(session, args.slug), args.upstream, "cli",
            trust_mfa=given(args.trust_mfa),
            trusted_acrs=[] if args.no_trusted_acr else given(args.trusted_acr),
            back_channel_hosts=[] if args.no_back_channel_host else given(args.back_channel_host),
            name=given(args.name), email_domains=given(csv(args.email_domains)),
            email_authoritative=given(on_off(args.email_authoritative)),
            jit=admin.KEEP if args.jit is None else JIT_SETTING[args.jit])
        return _upstream_out(settings, args.slug, upstream, _check_discovery(upstream))


def _check_discovery(upstream) -> str:
    """A discovery document we would refuse at every sign-in is refused now, and nothing is
    changed; one we cannot fetch yet (the upstream may not be up) is checked at sign-in."""
    from idp.federation.client import UpstreamMisconfigured, UpstreamUnavailable, upstream_metadata

    try:
        upstream_metadata(upstream)
        return "checked"
    except UpstreamMisconfigured as e:
        raise CLIError(f"{upstream.issuer} cannot be used: {e}; nothing was changed") from None
    except UpstreamUnavailable as e:
        print(f"idp: warning: could not read the upstream's discovery document ({e}); it is "
              f"checked again at each sign-in", file=sys.stderr)
        return "unreachable"


def _upstream_out(settings: Settings, tenant_slug: str, upstream, discovery: str) -> dict:
    return {"tenant": tenant_slug, "upstream": upstream.slug, "name": upstream.name,
            "issuer": upstream.issuer, "trust_mfa": upstream.trust_mfa,
            "trusted_acrs": upstream.trusted_acrs,
            "back_channel_hosts": upstream.back_channel_hosts,
            "email_domains": upstream.email_domains,
            "email_authoritative": upstream.email_authoritative,
            "jit": {v: k for k, v in JIT_SETTING.items()}[upstream.jit], "discovery": discovery,
            "redirect_uri": f"{settings.base_url}/t/{tenant_slug}/login/upstream/{upstream.slug}/callback"}


def _slugify(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63] or "upstream"


def _upstream_trust_arguments(sp) -> None:
    sp.add_argument("--trusted-acr", action="append", metavar="VALUE",
                    help="an acr value of the upstream that proves MFA, exactly (repeatable)")
    sp.add_argument("--back-channel-host", action="append", metavar="HOST[:PORT]",
                    help="a host besides the issuer's that its token endpoint and keys may be on "
                         "(repeatable)")


def _upstream_account_arguments(sp, **defaults) -> None:
    sp.add_argument("--email-authoritative", choices=["on", "off"],
                    help="on: its email addresses in --email-domains count without "
                         "email_verified (it runs those mailboxes)")
    sp.add_argument("--jit", choices=list(JIT_SETTING),
                    help="create accounts on first sign-in: on, off, or as the tenant's policy")
    sp.set_defaults(**defaults)


def add_commands(verbs: dict) -> None:
    sp = verbs["upstream"].add_parser("add")
    sp.add_argument("slug")
    sp.add_argument("--name", required=True)
    sp.add_argument("--slug-name", help="the upstream's short name in URLs (default: from --name)")
    sp.add_argument("--issuer", required=True)
    sp.add_argument("--client-id", required=True)
    sp.add_argument("--client-secret-stdin", action="store_true")
    sp.add_argument("--email-domains", help="example.com,...")
    sp.add_argument("--trust-mfa", choices=["never", "when_upstream_mfa", "always"], default="never")
    _upstream_trust_arguments(sp)
    _upstream_account_arguments(sp, email_authoritative="off", jit="tenant")
    sp.set_defaults(func=upstream_add)
    sp = verbs["upstream"].add_parser("set", help="change an upstream's settings")
    sp.add_argument("slug")
    sp.add_argument("upstream", help="the upstream's short name (as in its redirect URI)")
    sp.add_argument("--name", help="the name on its sign-in button")
    sp.add_argument("--email-domains", help="example.com,... (an empty value lists none)")
    sp.add_argument("--trust-mfa", choices=["never", "when_upstream_mfa", "always"])
    _upstream_trust_arguments(sp)
    _upstream_account_arguments(sp)
    sp.add_argument("--no-trusted-acr", action="store_true", help="forget the trusted acr values")
    sp.add_argument("--no-back-channel-host", action="store_true",
                    help="forget the listed back-channel hosts")
    sp.set_defaults(func=upstream_set)
