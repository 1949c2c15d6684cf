"""``idp tenant|user|client|group|login-token ...``: who is who in a tenant, and a user's
sign-in link."""

from __future__ import annotations

import argparse
import sys

from idp.cli.common import CLIError
from idp.config import Settings
from idp.roles import ROLES


def tenant_create(settings: Settings, args) -> dict:
    from idp import directory
    from idp.installation import database

    with database(settings) as session:
        tenant = directory.create_tenant(session, args.slug, args.name)
        return {"slug": tenant.slug, "name": tenant.name,
                "issuer": f"{settings.base_url}/t/{tenant.slug}"}


def user_create(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database
    from idp.password import Passwords

    if not args.password_stdin:
        raise CLIError("give the password on standard input with --password-stdin")
    password = sys.stdin.readline().rstrip("\r\n")
    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        user = admin.create_user(
            session, settings, Passwords.from_settings(settings), tenant, args.email, password,
            "cli", name=args.name or "", role=args.role, phone=args.phone,
            groups=args.group or [],
        )
        return {"tenant": tenant.slug, "email": user.email, "sub": user.subject,
                "role": user.role, "groups": [g.name for g in user.groups], "phone": user.phone}


def user_mfa(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        user = admin.set_user_mfa(session, directory.get_tenant(session, args.slug), args.email,
                                  args.action, "cli")
        return {"tenant": args.slug, "email": user.email, "mfa_admin_state": user.mfa_admin_state,
                "must_reenroll": user.mfa_must_reenroll}


def user_unlock(settings: Settings, args) -> dict:
    from idp import admin, directory, store
    from idp.guard import Guard
    from idp.installation import database

    with database(settings) as session:
        if settings.redis_url is None:
            raise CLIError("locks live in the embedded store of the running server; "
                           "set IDP_REDIS_URL to unlock from the command line")
        user = admin.unlock(session, Guard(store.connect(settings)),
                            directory.get_tenant(session, args.slug), args.email, "cli")
        return {"tenant": args.slug, "email": user.email, "locked": False}


def _sessions_store(settings: Settings):
    """The store the server keeps sessions in, when this command can reach it: with the
    embedded store (no IDP_REDIS_URL) they live inside the server's process, and a session
    of a deactivated or deleted user ends at its next use instead."""
    from idp import store

    return store.connect(settings) if settings.redis_url else None


def user_deactivate(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        user, ended = admin.deactivate(session, _sessions_store(settings),
                                       directory.get_tenant(session, args.slug), args.email, "cli")
        return {"tenant": args.slug, "email": user.email, "status": user.status,
                "sessions_ended": ended.sessions, "tokens_revoked": ended.tokens}


def user_reactivate(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        user = admin.reactivate(session, directory.get_tenant(session, args.slug), args.email, "cli")
        return {"tenant": args.slug, "email": user.email, "status": user.status}


def user_delete(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        gone = admin.delete_user(session, _sessions_store(settings),
                                 directory.get_tenant(session, args.slug), args.email, "cli")
        return {"tenant": args.slug, "email": gone["email"], "deleted": True,
                "sessions_ended": gone["sessions"], "tokens_revoked": gone["tokens"]}


def user_set_role(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        try:
            user = admin.set_role(session, directory.get_tenant(session, args.slug), args.email,
                                  args.role, "cli")
        except directory.RoleNotAllowedMfa as e:
            raise CLIError(f"{e} (idp policy set {args.slug} --roles-allowed "
                           "admin,mfa-admin,member)") from None
        return {"tenant": args.slug, "email": user.email, "role": user.role}


SCOPE_HELP = ('the scopes the client may be granted, space-separated (default "openid profile '
              'email offline_access"); a service with --grant-types client_credentials may '
              "hold admin:read, admin:write, mfa:manage, users:provision for the admin API "
              "and SCIM")


def client_create(settings: Settings, args) -> dict:
    from idp import directory
    from idp.installation import database

    grant_types = [g.strip() for g in args.grant_types.split(",") if g.strip()]
    jwks = _jwks_argument(args.jwks) if args.jwks else None
    if (args.jwks or args.jwks_uri) and args.auth_method != "private_key_jwt":
        raise CLIError("--jwks and --jwks-uri go with --auth-method private_key_jwt")
    if args.public and args.auth_method not in (None, "none"):
        raise CLIError(f"a --public client has no credentials: not --auth-method {args.auth_method}")
    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        new = directory.create_client(
            session, tenant, args.name, args.redirect_uri or [], public=args.public,
            post_logout_redirect_uris=args.post_logout_redirect_uri or [],
            grant_types=grant_types, id_token_alg=args.id_token_alg, min_acr=args.min_acr,
            backchannel_logout_uri=args.backchannel_logout_uri,
            backchannel_logout_session_required=args.backchannel_logout_session_required,
            scope=args.scope, auth_method=args.auth_method, jwks=jwks, jwks_uri=args.jwks_uri,
            subject_type=args.subject_type,
            sector_identifier_uri=args.sector_identifier_uri,
            private_allowed=settings.calls_private_addresses,
            require_par=args.require_par,
            require_signed_request_object=args.require_signed_request_object,
            request_object_signing_alg=args.request_object_alg,
            dpop_bound_access_tokens=args.dpop,
        )
        return {"client_id": new.client.client_id, "client_secret": new.secret,
                "name": new.client.name, "public": new.client.is_public,
                "redirect_uris": new.client.redirect_uris,
                "post_logout_redirect_uris": new.client.post_logout_redirect_uris,
                "grant_types": new.client.grant_types,
                "min_acr": new.client.min_acr,
                "scope": new.client.scope,
                "dpop_bound_access_tokens": new.client.dpop_bound_access_tokens,
                **_backchannel(new.client), **_subjects(new.client), **_request_rules(new.client),
                "token_endpoint_auth_method": new.client.token_endpoint_auth_method or (
                    "client_secret_basic" if new.secret else "none"),
                **({"jwks_uri": new.client.jwks_uri} if new.client.jwks_uri else {}),
                **({"jwks_kids": [k.get("kid") for k in new.client.jwks["keys"]]}
                   if new.client.jwks else {}),
                "issuer": f"{settings.base_url}/t/{tenant.slug}"}


def _jwks_argument(source: str) -> dict:
    """The public keys given to ``--jwks``: a file's path, or ``-`` for standard input."""
    from idp import jwks

    try:
        text = sys.stdin.read() if source == "-" else open(source, encoding="utf-8").read()
    except (OSError, UnicodeError) as error:
        raise CLIError(f"--jwks {source}: cannot be read ({error.__class__.__name__})") from None
    try:
        return jwks.parse(text)
    except jwks.BadKeySet as error:
        raise CLIError(f"--jwks: {error}") from None


def _subjects(client) -> dict:
    return {"subject_type": client.subject_type,
            "sector_identifier_uri": client.sector_identifier_uri}


def _backchannel(client) -> dict:
    return {"backchannel_logout_uri": client.backchannel_logout_uri,
            "backchannel_logout_session_required": client.backchannel_logout_session_required}


def _request_rules(client) -> dict:
    return {"require_par": bool(client.require_par),
            "require_signed_request_object": bool(client.require_signed_request_object),
            "request_object_signing_alg": client.request_object_signing_alg}


YES_NO = {"yes": True, "no": False, None: None}  # an update's switch; None: not given, unchanged


def client_update(settings: Settings, args) -> dict:
    """Change what is given, through ``admin.update_client`` as the console does; what is not
    given stays. ``--backchannel-logout-uri ""`` removes the URI, ``--request-object-alg ""``
    the algorithm (then any the server accepts). A change that gives every user a new ``sub``
    at the client (its subject type, a pairwise client's sector) needs
    ``--confirm-new-subjects``; without it, nothing changes."""
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        try:
            client = admin.update_client(
                session, directory.get_tenant(session, args.slug), args.client_id, "cli",
                name=args.name,
                backchannel_logout_uri=(False if args.backchannel_logout_uri is None
                                        else args.backchannel_logout_uri),
                backchannel_logout_session_required=YES_NO[
                    args.backchannel_logout_session_required],
                scope=args.scope,
                dpop_bound_access_tokens=YES_NO[args.dpop],
                subject_type=args.subject_type,
                sector_identifier_uri=(False if args.sector_identifier_uri is None
                                       else args.sector_identifier_uri),
                private_allowed=settings.calls_private_addresses,
                require_par=args.require_par,
                require_signed_request_object=args.require_signed_request_object,
                request_object_signing_alg=(False if args.request_object_alg is None
                                            else args.request_object_alg),
                confirm_new_subjects=args.confirm_new_subjects)
        except admin.NewSubjects as error:
            raise CLIError(f"{error}; nothing is changed: to go ahead, run the command again "
                           "with --confirm-new-subjects") from None
        return {"client_id": client.client_id, "name": client.name, "scope": client.scope,
                "dpop_bound_access_tokens": client.dpop_bound_access_tokens,
                **_backchannel(client), **_subjects(client), **_request_rules(client)}


def group_create(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        group = admin.create_group(session, directory.get_tenant(session, args.slug), args.name, "cli")
        return {"tenant": args.slug, "group": group.name}


def group_add(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        user = admin.add_to_group(session, directory.get_tenant(session, args.slug), args.name,
                                  args.email, "cli")
        return {"tenant": args.slug, "email": user.email, "groups": [g.name for g in user.groups]}


def login_token_create(settings: Settings, args) -> dict:
    from idp import admin, directory, notify
    from idp.installation import database

    try:
        notify.smtp_transport(settings)
    except notify.SendError as e:  # IDP_SMTP_URL is malformed: the owner could never be told
        raise CLIError(f"no sign-in link was created: {e}") from None
    with database(settings) as session:
        try:
            issued = admin.create_login_token(session, directory.get_tenant(session, args.slug),
                                              args.email, settings.base_url, "cli",
                                              args.ttl_minutes, settings=settings)
        except admin.PrivilegedLinkRefused as e:
            raise CLIError(f"{e} (to allow it: idp policy set {args.slug} "
                           "--admin-login-links on)") from None
        return {"url": issued.url, "expires_at": issued.expires_at.isoformat(),
                "works_once_mailed": issued.waits_for_mail}


def add_commands(verbs: dict) -> None:
    sp = verbs["tenant"].add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("--name")
    sp.set_defaults(func=tenant_create)

    sp = verbs["user"].add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("--password-stdin", action="store_true")
    sp.add_argument("--name")
    sp.add_argument("--role", choices=ROLES, default="member")
    sp.add_argument("--phone")
    sp.add_argument("--group", action="append")
    sp.set_defaults(func=user_create)
    sp = verbs["user"].add_parser("mfa")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("action", choices=["enforce", "exempt", "default", "reset"])
    sp.set_defaults(func=user_mfa)
    sp = verbs["user"].add_parser("unlock")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.set_defaults(func=user_unlock)
    # No --yes on delete: the command is the contract (DESIGN.md), as scripts call it.
    for verb, func, help_ in (
            ("deactivate", user_deactivate, "stop an account signing in; its sessions and "
                                            "tokens end now"),
            ("reactivate", user_reactivate, "let a deactivated account sign in again"),
            ("delete", user_delete, "delete an account and everything it owns (the audit "
                                    "log keeps its events)")):
        sp = verbs["user"].add_parser(verb, help=help_)
        sp.add_argument("slug")
        sp.add_argument("email")
        sp.set_defaults(func=func)
    sp = verbs["user"].add_parser("set-role", help="administrator, two-factor administrator "
                                                   "or member")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("role", choices=ROLES)
    sp.set_defaults(func=user_set_role)

    sp = verbs["client"].add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("--name", required=True)
    sp.add_argument("--redirect-uri", nargs="+", action="extend")
    sp.add_argument("--public", action="store_true")
    sp.add_argument("--post-logout-redirect-uri", nargs="+", action="extend")
    sp.add_argument("--grant-types", default="authorization_code,refresh_token")
    sp.add_argument("--id-token-alg", default="RS256", choices=["RS256", "ES256"])
    sp.add_argument("--min-acr", choices=["pwd", "mfa", "phr"])
    sp.add_argument("--backchannel-logout-uri", metavar="URL",
                    help="where logout tokens are POSTed when a session of this client ends")
    sp.add_argument("--backchannel-logout-session-required", action="store_true",
                    help="the client needs the session id (sid) in logout tokens")
    sp.add_argument("--scope", metavar="SCOPES", help=SCOPE_HELP)
    sp.add_argument("--auth-method", choices=["client_secret_basic", "client_secret_post",
                                              "private_key_jwt", "none"],
                    help="how the client proves itself at the token endpoint (default: a "
                         "secret, or none with --public); private_key_jwt needs --jwks or "
                         "--jwks-uri")
    keys = sp.add_mutually_exclusive_group()
    keys.add_argument("--jwks", metavar="FILE", help="the client's public keys (a JWKS) for "
                                                     "private_key_jwt; - reads standard input")
    keys.add_argument("--jwks-uri", metavar="URL", help="where the client publishes its public "
                                                        "keys (https), for private_key_jwt")
    _subject_arguments(sp)
    _request_arguments(sp)
    sp.add_argument("--dpop", action="store_true", help=DPOP_HELP)
    sp.set_defaults(func=client_create)

    sp = verbs["client"].add_parser("update", help="change what is given of a client's "
                                                   "settings; the rest stays")
    sp.add_argument("slug")
    sp.add_argument("client_id")
    sp.add_argument("--name")
    sp.add_argument("--backchannel-logout-uri", metavar="URL",
                    help='where logout tokens are POSTed ("" removes it)')
    sp.add_argument("--backchannel-logout-session-required", choices=["yes", "no"])
    sp.add_argument("--scope", metavar="SCOPES", help=SCOPE_HELP)
    dpop = sp.add_mutually_exclusive_group()
    # --dpop as on create (a bare switch); --dpop yes|no as scripts already write it.
    dpop.add_argument("--dpop", nargs="?", const="yes", choices=["yes", "no"],
                      help=DPOP_HELP + " (--dpop or --dpop yes: on; --no-dpop or --dpop no: off)")
    dpop.add_argument("--no-dpop", dest="dpop", action="store_const", const="no",
                      help="issue this client Bearer or DPoP tokens, as it asks")
    _subject_arguments(sp, update=True)
    _request_arguments(sp, update=True)
    sp.add_argument("--confirm-new-subjects", action="store_true",
                    help="go ahead with a change of --subject-type, or of a pairwise client's "
                         "sector, although every user then gets a new sub at this client")
    sp.set_defaults(func=client_update)

    sp = verbs["group"].add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("name")
    sp.set_defaults(func=group_create)
    sp = verbs["group"].add_parser("add")
    sp.add_argument("slug")
    sp.add_argument("name")
    sp.add_argument("email")
    sp.set_defaults(func=group_add)

    sp = verbs["login-token"].add_parser("create")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("--ttl-minutes", type=int, default=15)
    sp.set_defaults(func=login_token_create)


DPOP_HELP = ("issue this client only DPoP-bound tokens (RFC 9449): a token request without a "
             "DPoP proof is refused")


def _request_arguments(sp, update: bool = False) -> None:
    """How the client must send authorization requests; on update, --no-... turns a rule off
    and what is not given stays."""
    switch = argparse.BooleanOptionalAction if update else "store_true"
    sp.add_argument("--require-par", action=switch, default=None if update else False,
                    help="every authorization request must be pushed first (RFC 9126)")
    sp.add_argument("--require-signed-request-object", action=switch,
                    default=None if update else False,
                    help="every authorization request must be a signed request object (RFC 9101)")
    sp.add_argument("--request-object-alg", metavar="ALG",
                    help="the only algorithm its request objects may be signed with "
                         "(RS256, PS256, ES256 or EdDSA)"
                         + ('; "" removes it (then any of them)' if update else ""))


def _subject_arguments(sp, update: bool = False) -> None:
    sp.add_argument("--subject-type", choices=["public", "pairwise"],
                    default=None if update else "public",
                    help="pairwise: the client sees an id of its own for each user (OIDC Core "
                         "8); changing it changes every sub the client sees")
    sp.add_argument("--sector-identifier-uri", metavar="URL",
                    help="https URL of a JSON array listing every redirect URI: the sector of "
                         "a pairwise client whose redirect URIs are on several hosts"
                         + (' ("" removes it)' if update else ""))
