"""The ``idp`` command: ``idp NOUN VERB SLUG ...``, JSON on stdout, one clear line on error."""

from __future__ import annotations

import argparse
import json
import logging
import sys
from contextlib import contextmanager
from datetime import datetime, timezone

from sqlalchemy.orm import Session

from idp.config import Settings


class CLIError(Exception):
    """Printed as one line on stderr; the command exits 1."""


def _out(data) -> None:
    json.dump(data, sys.stdout, indent=2)
    sys.stdout.write("\n")


@contextmanager
def _database(settings: Settings):
    """A session committed when the command succeeds, rolled back when it fails."""
    from idp import cache  # noqa: F401  (a change to a client or tenant reaches the workers)
    from idp import store
    from idp.db import make_engine

    engine = make_engine(settings.database_url)
    info = {"idp.store": store.connect(settings)} if settings.redis_url else {}
    session = Session(engine, expire_on_commit=False, info=info)
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
        engine.dispose()


def _passwords(settings: Settings):
    from idp.password import Passwords

    return Passwords(settings.argon2_memory_kib, settings.argon2_time_cost,
                     settings.argon2_parallelism)


def cmd_init(settings: Settings, args) -> dict:
    from idp import db
    from idp.oidc import keys

    db.upgrade(settings.database_url)
    created = keys.ensure(settings.keys_dir)
    return {"database": "migrated to head", "keys_created": [k.kid for k in created],
            "keys_dir": str(settings.keys_dir)}


def cmd_keys_rotate(settings: Settings, args) -> dict:
    from idp.oidc import keys

    created = keys.rotate(settings.keys_dir, ahead=0 if args.now else keys.JWKS_MAX_AGE)
    switch = created[0].active_from
    return {"keys": {k.alg: k.kid for k in created},
            "signing_from": datetime.fromtimestamp(switch, timezone.utc).isoformat(
                timespec="seconds"),
            "published_now": True}


def cmd_tokens_purge(settings: Settings, args) -> dict:
    from datetime import timedelta

    from idp.oidc import retention

    if args.grace_hours < 0:
        raise CLIError("--grace-hours is 0 or more")
    with _database(settings) as session:
        return {"deleted": retention.purge(session, timedelta(hours=args.grace_hours)),
                "expired_before_hours": args.grace_hours}


def cmd_tenant_create(settings: Settings, args) -> dict:
    from idp import directory

    with _database(settings) as session:
        tenant = directory.create_tenant(session, args.slug, args.name)
        return {"slug": tenant.slug, "name": tenant.name,
                "issuer": f"{settings.base_url}/t/{tenant.slug}"}


def cmd_user_create(settings: Settings, args) -> dict:
    from idp import directory

    if not args.password_stdin:
        raise CLIError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    with _database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        user = directory.create_user(
            session, _passwords(settings), tenant, args.email, password, name=args.name or "",
            role=args.role, phone=args.phone, groups=args.group or [],
        )
        return {"tenant": tenant.slug, "email": user.email, "sub": user.subject,
                "role": user.role, "groups": [g.name for g in user.groups], "phone": user.phone}


def cmd_client_create(settings: Settings, args) -> dict:
    from idp import directory

    grant_types = [g.strip() for g in args.grant_types.split(",") if g.strip()]
    with _database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        new = directory.create_client(
            session, tenant, args.name, args.redirect_uri or [], public=args.public,
            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
            grant_types=grant_types, id_token_alg=args.id_token_alg, min_acr=args.min_acr,
        )
        return {"client_id": new.client.client_id, "client_secret": new.secret,
                "name": new.client.name, "public": new.client.is_public,
                "redirect_uris": new.client.redirect_uris,
                "post_logout_redirect_uris": new.client.post_logout_redirect_uris,
                "grant_types": new.client.grant_types,
                "min_acr": new.client.min_acr,
                "issuer": f"{settings.base_url}/t/{tenant.slug}"}


def cmd_serve(settings: Settings, args) -> None:
    from idp import create_app

    cmd_init(settings, args)
    app = create_app(settings)
    if settings.access_log:
        # Ours is the access log; werkzeug's would add a line per request, query string and all.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"idp serving {settings.base_url} (listening on {args.host}:{args.port})",
          file=sys.stderr, flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


def cmd_demo(settings: Settings, args) -> None:
    from idp.demo import run_demo

    run_demo(settings, host=args.host, port=args.port, portal_port=args.portal_port)


def _csv(value: str | None) -> list[str] | None:
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def _on_off(value: str | None) -> bool | None:
    return None if value is None else value == "on"


def cmd_policy_show(settings: Settings, args) -> dict:
    from idp import admin, directory

    with _database(settings) as session:
        return admin.policy_dict(session, directory.get_tenant(session, args.slug))


def cmd_policy_set(settings: Settings, args) -> dict:
    from idp import admin, directory

    with _database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        return admin.set_policy(
            session, tenant, "cli", mode=args.mode, factors=_csv(args.factors),
            groups=_csv(args.groups), users=_csv(args.users), grace_days=args.grace_days,
            grace_skips=args.grace_skips, roles_allowed=_csv(args.roles_allowed),
            self_disable=_on_off(args.self_disable),
            login_token_bypass=_on_off(args.login_token_bypass),
            federation_jit=_on_off(args.federation_jit), captcha_after=args.captcha_after,
            lock_after=args.lock_after, lock_minutes=args.lock_minutes,
            lock_email_admins=_on_off(args.lock_email_admins),
            admin_login_links=_on_off(args.admin_login_links),
        )


def cmd_group_create(settings: Settings, args) -> dict:
    from idp import admin, directory

    with _database(settings) as session:
        group = admin.create_group(session, directory.get_tenant(session, args.slug), args.name, "cli")
        return {"tenant": args.slug, "group": group.name}


def cmd_group_add(settings: Settings, args) -> dict:
    from idp import admin, directory

    with _database(settings) as session:
        user = admin.add_to_group(session, directory.get_tenant(session, args.slug), args.name,
                                  args.email, "cli")
        return {"tenant": args.slug, "email": user.email, "groups": [g.name for g in user.groups]}


def cmd_user_mfa(settings: Settings, args) -> dict:
    from idp import admin, directory

    with _database(settings) as session:
        user = admin.set_user_mfa(session, directory.get_tenant(session, args.slug), args.email,
                                  args.action, "cli")
        return {"tenant": args.slug, "email": user.email, "mfa_admin_state": user.mfa_admin_state,
                "must_reenroll": user.mfa_must_reenroll}


def cmd_user_unlock(settings: Settings, args) -> dict:
    from idp import admin, directory, store
    from idp.guard import Guard

    with _database(settings) as session:
        if settings.redis_url is None:
            raise CLIError("locks live in the embedded store of the running server; "
                           "set IDP_REDIS_URL to unlock from the command line")
        user = admin.unlock(session, Guard(store.connect(settings)),
                            directory.get_tenant(session, args.slug), args.email, "cli")
        return {"tenant": args.slug, "email": user.email, "locked": False}


def cmd_login_token_create(settings: Settings, args) -> dict:
    from idp import admin, directory, notify

    with _database(settings) as session:
        try:
            mail = notify.mail_sender(settings, session)
        except notify.SendError as e:  # IDP_SMTP_URL is malformed: the owner cannot be told
            raise CLIError(f"no sign-in link was created: {e}") from None
        try:
            issued = admin.create_login_token(session, directory.get_tenant(session, args.slug),
                                              args.email, settings.base_url, "cli",
                                              args.ttl_minutes, mail=mail)
        except admin.PrivilegedLinkRefused as e:
            raise CLIError(f"{e} (to allow it: idp policy set {args.slug} "
                           "--admin-login-links on)") from None
        return {"url": issued.url, "expires_at": issued.expires_at.isoformat()}


def cmd_upstream_add(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.mfa.secrets import SecretBox

    if not args.client_secret_stdin:
        raise CLIError("give the client secret on standard input with --client-secret-stdin")
    secret = sys.stdin.readline().strip()
    with _database(settings) as session:
        upstream = admin.add_upstream(
            session, SecretBox(settings.secret_key), directory.get_tenant(session, args.slug),
            slug=args.slug_name or _slugify(args.name), name=args.name, issuer=args.issuer,
            client_id=args.client_id, client_secret=secret,
            email_domains=_csv(args.email_domains) or [], trust_mfa=args.trust_mfa, actor="cli",
            trusted_acrs=args.trusted_acr or [], back_channel_hosts=args.back_channel_host or [],
            email_authoritative=args.email_authoritative == "on", jit=JIT_SETTING[args.jit],
        )
        discovery = _check_discovery(upstream)
        return _upstream_out(settings, args.slug, upstream, discovery)


def _check_discovery(upstream) -> str:
    """A discovery document we would refuse at every sign-in is refused now, and nothing is
    changed; one we cannot fetch yet (the upstream may not be up) is checked at sign-in."""
    from idp.login import federation

    try:
        federation.upstream_metadata(upstream)
        return "checked"
    except federation.UpstreamMisconfigured as e:
        raise CLIError(f"{upstream.issuer} cannot be used: {e}; nothing was changed") from None
    except federation.UpstreamUnavailable as e:
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


def cmd_upstream_set(settings: Settings, args) -> dict:
    from idp import admin, directory

    def given(value):
        return admin.KEEP if value is None else value

    with _database(settings) as session:
        upstream = admin.update_upstream(
            session, directory.get_tenant(session, args.slug), args.upstream, "cli",
            trust_mfa=given(args.trust_mfa),
            trusted_acrs=[] if args.no_trusted_acr else given(args.trusted_acr),
            back_channel_hosts=[] if args.no_back_channel_host else given(args.back_channel_host),
            name=given(args.name), email_domains=given(_csv(args.email_domains)),
            email_authoritative=given(_on_off(args.email_authoritative)),
            jit=admin.KEEP if args.jit is None else JIT_SETTING[args.jit])
        return _upstream_out(settings, args.slug, upstream, _check_discovery(upstream))


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number


def cmd_outbox(settings: Settings, args) -> list | None:
    """What the outbox backends hold (mail and SMS of the embedded defaults), newest first."""
    from sqlalchemy import func, select

    from idp.addresses import normalise_email
    from idp.directory import DirectoryError, normalise_phone
    from idp.models import OutboxMessage

    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if args.channel:
        query = query.where(OutboxMessage.channel == args.channel)
    if args.to:
        wanted = normalise_email(args.to)  # an address in its one spelling, as users have it
        if wanted.startswith("+"):  # a number as people write it: "+33 6 12 34 56 78"
            try:
                wanted = normalise_phone(wanted)
            except DirectoryError:
                pass
        query = query.where(func.lower(OutboxMessage.recipient) == wanted)
    with _database(settings) as session:
        rows = session.scalars(query.limit(args.limit)).all()
        found = [{"recipient": m.recipient, "channel": m.channel, "subject": m.subject,
                  "text": m.body,
                  "time": m.created_at.astimezone(timezone.utc).isoformat(timespec="seconds")}
                 for m in rows]
    if args.json:
        return found
    if not found:
        print("The outbox is empty." if not (args.channel or args.to) else "No message matches.")
        return None
    columns = ("time", "channel", "recipient", "subject")
    widths = {c: max(len(c), *(len(m[c] or "") for m in found)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns) + "  TEXT")
    for m in found:
        text = " ".join(m["text"].split())  # one line per message: mail bodies have several
        print("  ".join((m[c] or "-").ljust(widths[c]) for c in columns) + f"  {text}")
    return None


def _slugify(name: str) -> str:
    import re

    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:63] or "upstream"


# --jit: "tenant" follows the tenant's policy (idp policy set --federation-jit).
JIT_SETTING = {"tenant": None, "on": True, "off": False}


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


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="idp", description="OpenID Connect identity provider")
    sub = p.add_subparsers(dest="command", required=True)

    sub.add_parser("init", help="migrate the database to head; create signing keys if none"
                   ).set_defaults(func=cmd_init)
    for name, func in (("serve", cmd_serve), ("demo", cmd_demo)):
        sp = sub.add_parser(name, help=f"{name} on the embedded defaults")
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, default=5000)
        if name == "demo":
            sp.add_argument("--portal-port", type=int, default=5001)
        sp.set_defaults(func=func)

    tenant = sub.add_parser("tenant").add_subparsers(dest="verb", required=True)
    sp = tenant.add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("--name")
    sp.set_defaults(func=cmd_tenant_create)

    user = sub.add_parser("user").add_subparsers(dest="verb", required=True)
    sp = user.add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("--password-stdin", action="store_true")
    sp.add_argument("--name")
    sp.add_argument("--role", choices=["admin", "member"], default="member")
    sp.add_argument("--phone")
    sp.add_argument("--group", action="append")
    sp.set_defaults(func=cmd_user_create)

    client = sub.add_parser("client").add_subparsers(dest="verb", required=True)
    sp = client.add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("--name", required=True)
    sp.add_argument("--redirect-uri", nargs="+", action="extend")
    sp.add_argument("--public", action="store_true")
    sp.add_argument("--post-logout-redirect-uri", nargs="+", action="extend")
    sp.add_argument("--grant-types", default="authorization_code,refresh_token")
    sp.add_argument("--id-token-alg", default="RS256", choices=["RS256", "ES256"])
    sp.add_argument("--min-acr", choices=["pwd", "mfa", "phr"])
    sp.set_defaults(func=cmd_client_create)

    policy = sub.add_parser("policy").add_subparsers(dest="verb", required=True)
    sp = policy.add_parser("show")
    sp.add_argument("slug")
    sp.set_defaults(func=cmd_policy_show)
    sp = policy.add_parser("set")
    sp.add_argument("slug")
    sp.add_argument("--mode", choices=["disabled", "optional", "required"])
    sp.add_argument("--factors", help="TYPE,... (idp policy show lists the allowed ones; an "
                                      "unknown type is refused with every type there is)")
    sp.add_argument("--groups", help="G,... (with --users: the policy covers only these)")
    sp.add_argument("--users", help="EMAIL,...")
    sp.add_argument("--grace-days", type=int)
    sp.add_argument("--grace-skips", type=int)
    sp.add_argument("--roles-allowed", help="admin,member")
    sp.add_argument("--self-disable", choices=["on", "off"])
    sp.add_argument("--login-token-bypass", choices=["on", "off"])
    sp.add_argument("--federation-jit", choices=["on", "off"])
    sp.add_argument("--captcha-after", type=int)
    sp.add_argument("--lock-after", type=int)
    sp.add_argument("--lock-minutes", type=int)
    sp.add_argument("--lock-email-admins", choices=["on", "off"])
    sp.add_argument("--admin-login-links", choices=["on", "off"],
                    help="allow sign-in links for administrators (default off)")
    sp.set_defaults(func=cmd_policy_set)

    group = sub.add_parser("group").add_subparsers(dest="verb", required=True)
    sp = group.add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("name")
    sp.set_defaults(func=cmd_group_create)
    sp = group.add_parser("add")
    sp.add_argument("slug")
    sp.add_argument("name")
    sp.add_argument("email")
    sp.set_defaults(func=cmd_group_add)

    sp = user.add_parser("mfa")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("action", choices=["enforce", "exempt", "default", "reset"])
    sp.set_defaults(func=cmd_user_mfa)
    sp = user.add_parser("unlock")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.set_defaults(func=cmd_user_unlock)

    token = sub.add_parser("login-token").add_subparsers(dest="verb", required=True)
    sp = token.add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("--ttl-minutes", type=int, default=15)
    sp.set_defaults(func=cmd_login_token_create)

    upstream = sub.add_parser("upstream").add_subparsers(dest="verb", required=True)
    sp = upstream.add_parser("add")
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
    sp.set_defaults(func=cmd_upstream_add)
    sp = upstream.add_parser("set", help="change an upstream's settings")
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
    sp.set_defaults(func=cmd_upstream_set)

    sp = sub.add_parser("outbox", help="list the mail and SMS the outbox holds, newest first")
    sp.add_argument("--json", action="store_true", help="a JSON list on stdout")
    sp.add_argument("--channel", choices=["mail", "sms"])
    sp.add_argument("--to", help="only messages to this address or number")
    sp.add_argument("--limit", type=_positive, default=20)
    sp.set_defaults(func=cmd_outbox)

    keys = sub.add_parser("keys").add_subparsers(dest="verb", required=True)
    sp = keys.add_parser("rotate", help="new signing keys: published now, signing in "
                                       "5 minutes (when every cached JWKS has them)")
    sp.add_argument("--now", action="store_true",
                    help="sign with the new keys at once (a key that leaked)")
    sp.set_defaults(func=cmd_keys_rotate)
    tokens = sub.add_parser("tokens").add_subparsers(dest="verb", required=True)
    sp = tokens.add_parser("purge", help="delete tokens, codes and login tokens that expired "
                                         "(run it from cron: rotation adds a row per refresh)")
    sp.add_argument("--grace-hours", type=float, default=24.0,
                    help="keep what expired less than this long ago (default 24)")
    sp.set_defaults(func=cmd_tokens_purge)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from idp.directory import DirectoryError
    from idp.store import BadRedisURL

    try:
        settings = Settings.from_env()
    except ValueError as e:  # a malformed IDP_ variable: one line, not a traceback
        print(f"idp: {e}", file=sys.stderr)
        return 2
    try:
        result = args.func(settings, args)
    except (CLIError, DirectoryError, BadRedisURL) as e:
        print(f"idp: {e}", file=sys.stderr)
        return 1
    if result is not None:
        _out(result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
