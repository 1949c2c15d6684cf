"""``idp policy show|set``: a tenant's sign-in policy and account settings, as the console's
policy page edits them."""

from __future__ import annotations

from idp.cli.common import csv, on_off
from idp.config import Settings


def policy_show(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        return admin.policy_dict(session, directory.get_tenant(session, args.slug))


def policy_set(settings: Settings, args) -> dict:
    from idp import admin, directory
    from idp.installation import database

    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        return admin.set_policy(
            session, tenant, "cli", mode=args.mode, factors=csv(args.factors),
            groups=csv(args.groups), users=csv(args.users), grace_days=args.grace_days,
            grace_skips=args.grace_skips, roles_allowed=csv(args.roles_allowed),
            self_disable=on_off(args.self_disable),
            login_token_bypass=on_off(args.login_token_bypass),
            federation_jit=on_off(args.federation_jit), captcha_after=args.captcha_after,
            lock_after=args.lock_after, lock_minutes=args.lock_minutes,
            lock_email_admins=on_off(args.lock_email_admins),
            admin_login_links=on_off(args.admin_login_links),
            password_min_length=args.password_min_length,
            self_service_reset=on_off(args.self_service_reset),
            reset_link_minutes=args.reset_link_minutes,
            require_verified_email=on_off(args.require_verified_email),
            self_registration=on_off(args.self_registration),
            registration_domains=csv(args.registration_domains),
            passkey_first=on_off(args.passkey_first), passwordless=on_off(args.passwordless),
            remember_days=args.remember_days, remember_groups=csv(args.remember_groups),
            remember_roles=csv(args.remember_roles),
        )


def add_commands(verbs: dict) -> None:
    sp = verbs["policy"].add_parser("show")
    sp.add_argument("slug")
    sp.set_defaults(func=policy_show)
    sp = verbs["policy"].add_parser("set")
    sp.add_argument("slug")
    sp.add_argument("--mode", choices=["disabled", "optional", "required"])
    sp.add_argument("--factors", help="TYPE,... (idp policy show lists the allowed ones; an "
                                      "unknown type is refused with every type there is)")
    sp.add_argument("--groups", help="G,... (with --users: the policy covers only these)")
    sp.add_argument("--users", help="EMAIL,...")
    sp.add_argument("--grace-days", type=int)
    sp.add_argument("--grace-skips", type=int)
    sp.add_argument("--roles-allowed", help="admin,mfa-admin,member")
    sp.add_argument("--self-disable", choices=["on", "off"])
    sp.add_argument("--login-token-bypass", choices=["on", "off"])
    sp.add_argument("--federation-jit", choices=["on", "off"])
    sp.add_argument("--captcha-after", type=int)
    sp.add_argument("--lock-after", type=int)
    sp.add_argument("--lock-minutes", type=int)
    sp.add_argument("--lock-email-admins", choices=["on", "off"])
    sp.add_argument("--admin-login-links", choices=["on", "off"],
                    help="allow sign-in links for administrators (default off)")
    sp.add_argument("--password-min-length", type=int, metavar="N",
                    help="the shortest new password allowed, 8 to 64 (default 8)")
    sp.add_argument("--self-service-reset", choices=["on", "off"],
                    help="people may reset a forgotten password by mail (default on)")
    sp.add_argument("--reset-link-minutes", type=int, metavar="N",
                    help="how long a reset link works, 5 to 1440 (default 30)")
    sp.add_argument("--require-verified-email", choices=["on", "off"],
                    help="no code for a portal until the address is verified (default off)")
    sp.add_argument("--self-registration", choices=["on", "off"],
                    help="people may sign themselves up (default off)")
    sp.add_argument("--registration-domains", metavar="DOMAIN,...",
                    help="the email domains sign-up accepts; '' for any (the default)")
    sp.add_argument("--passkey-first", choices=["on", "off"],
                    help="a passkey may be the whole sign-in, where passkeys are an allowed "
                         "method (default on)")
    sp.add_argument("--passwordless", choices=["on", "off"],
                    help="people with a passkey may remove their password (default off)")
    sp.add_argument("--remember-days", type=int, metavar="N",
                    help="a browser that passed the second step skips the policy's second step "
                         "for N days, 0 to 365; 0 turns it off (the default)")
    sp.add_argument("--remember-groups", metavar="G,...",
                    help="remember browsers only for members of these groups; '' for everyone "
                         "(the default)")
    sp.add_argument("--remember-roles", metavar="ROLE,...",
                    help="the roles whose browsers may be remembered (default "
                         "admin,mfa-admin,member)")
    sp.set_defaults(func=policy_set)
