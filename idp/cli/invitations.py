"""``idp user invite``: add a user by mail (``idp.admin.invitations``); run again to send a new
link to someone invited already."""

from __future__ import annotations

from idp.config import Settings


def user_invite(settings: Settings, args) -> dict:
    from idp import directory
    from idp.admin import invitations
    from idp.installation import database

    with database(settings) as session:
        tenant = directory.get_tenant(session, args.slug)
        invited = invitations.invite(session, settings, tenant, args.email, "cli",
                                     name=args.name or "", role=args.role,
                                     groups=args.group or [])
        return {"tenant": tenant.slug, "email": invited.user.email, "role": invited.user.role,
                "groups": [g.name for g in invited.user.groups], "status": invited.user.status,
                "link_expires_at": invited.expires_at.isoformat(), "resent": invited.again}


def add_commands(verbs: dict) -> None:
    sp = verbs["user"].add_parser("invite", help="invite a user by mail: they choose their "
                                                 "password from the link (again: a new link)")
    sp.add_argument("slug")
    sp.add_argument("email")
    sp.add_argument("--name")
    sp.add_argument("--role", choices=["admin", "mfa-admin", "member"], default="member")
    sp.add_argument("--group", action="append", help="repeatable")
    sp.set_defaults(func=user_invite)
