"""Which local account an upstream sign-in is: a link, a vouched-for email, or a new account.

An upstream (``idp upstream add``) says who signed in by its ``sub``; the link
(``UpstreamIdentity``: upstream, sub → user) is what we go by once it exists. Before that, an
email address counts only when the upstream vouches for it (``email_doubt``): one it says it
verified, or one in the domains it runs the mailboxes of. Accounts are created on first
sign-in (just in time) only when the upstream or the tenant's policy says so
(``creates_accounts``), and only for an address it vouches for.

Nothing here talks to the upstream (``idp.federation.client``) or renders a page
(``idp.login.federation``); the caller's request or command commits what is added.
"""

from __future__ import annotations

from flask_babel import lazy_gettext as _l
from sqlalchemy import select
from sqlalchemy.orm import Session

from idp import audit
from idp.addresses import normalise_email
from idp.directory import EMAIL, find_user
from idp.models import Tenant, TenantPolicyRow, Upstream, UpstreamIdentity, User


class NoAccount(Exception):
    """The upstream sign-in maps to no account here, and none may be created."""

    def __init__(self, title: str, message: str, why: str = ""):
        super().__init__(message)
        self.title = title
        self.message = message
        self.why = why  # for the audit log: the person sees the same page whatever the cause


def _email(claims: dict) -> str | None:
    value = claims.get("email")
    if not isinstance(value, str):
        return None
    value = normalise_email(value)
    return value if EMAIL.fullmatch(value) and len(value) <= 320 else None


def _email_verified(claims: dict) -> bool:
    # OIDC Core 5.1 says boolean; some providers (e.g. Amazon Cognito) send the string "true".
    return claims.get("email_verified") in (True, "true")


def email_doubt(upstream: Upstream, email: str | None, claims: dict) -> str | None:
    """Why this upstream's word does not make ``email`` this person's, or None when it does:
    an address in one of its domains (any, if it lists none) that it says it verified (OIDC
    Core 5.1, 5.7), or in the domains the admin marked it authoritative for (it runs those
    mailboxes). The reason is for the audit log."""
    if not email:
        return "the upstream sent no usable email address"
    if upstream.email_domains and email.rsplit("@", 1)[1] not in upstream.email_domains:
        return "the email address is outside the upstream's domains"
    if _email_verified(claims) or (upstream.email_authoritative and upstream.email_domains):
        return None
    return "the upstream did not say it verified the email address"


def creates_accounts(upstream: Upstream, policy_row: TenantPolicyRow | None) -> bool:
    """Just-in-time provisioning: the upstream's own switch, else the tenant's."""
    if upstream.jit is not None:
        return upstream.jit
    return bool(policy_row and policy_row.federation_jit)


def _display_name(claims: dict, email: str) -> str:
    name = claims.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [claims.get(k) for k in ("given_name", "family_name")]
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip())
    return (name.strip() or email.split("@")[0])[:200]


def resolve_user(session: Session, tenant: Tenant, upstream: Upstream, claims: dict,
                 jit: bool) -> tuple[User, str]:
    """(the local user, how: "linked" | "matched" | "provisioned"), or NoAccount.

    1. a link (upstream, sub) names the user;
    2. else an email the upstream vouches for (``email_doubt``) matches an account here, and
       the link is made;
    3. else, with just-in-time provisioning on, a vouched-for email gets a passwordless member,
       linked. An address nobody vouched for is never put on an account: its real owner would
       find it taken, or reset its way into it.
    """
    subject = claims["sub"]
    user = linked_user(session, tenant, upstream, subject)
    if user is not None:
        return user, "linked"
    email = _email(claims)
    doubt = email_doubt(upstream, email, claims)

    def no_account(why: str) -> NoAccount:
        # Lazy: read in the page's language; the CLI and tests read them in English.
        return NoAccount(
            _l("No account here"),
            _l("Your %(provider)s sign-in worked, but it is not connected to an account in "
               "%(organisation)s. Ask your administrator for access.",
               provider=upstream.name, organisation=tenant.name), why)

    existing = find_user(session, tenant, email) if email else None
    if existing is not None:
        if doubt:
            # An unverified (or out-of-domain) address proves nothing about who owns it here.
            raise no_account(doubt)
        other = session.scalar(select(UpstreamIdentity.subject).where(
            UpstreamIdentity.upstream_id == upstream.id, UpstreamIdentity.user_id == existing.id))
        if other is not None:
            # The address moved to another upstream account (a recycled mailbox?): never
            # hand the local account to it silently.
            raise NoAccount(
                _l("Account already connected"),
                _l("The account for %(email)s is connected to a different %(provider)s "
                   "account. Ask your administrator to check it.", email=email,
                   provider=upstream.name))
        _link(session, upstream, subject, existing)
        existing.email_verified = True  # the upstream vouched for the address (no doubt above)
        how = "verified_email" if _email_verified(claims) else "authoritative_domain"
        audit.record(session, tenant.id, "upstream.identity_linked", user_id=existing.id,
                     actor=f"upstream:{upstream.slug}", upstream=upstream.slug, how=how)
        return existing, "matched"
    # JIT puts the address on a new account: only one the upstream vouches for, or any account
    # of the upstream would get in, and under someone else's address.
    if not jit:
        raise no_account("no account has that email address, and accounts are not created on "
                         "first sign-in")
    if doubt:
        raise no_account(doubt)
    user = User(tenant_id=tenant.id, email=email, name=_display_name(claims, email),
                role="member", password_hash=None, email_verified=True)  # vouched for
    session.add(user)
    session.flush()
    _link(session, upstream, subject, user)
    audit.record(session, tenant.id, "user.provisioned", user_id=user.id,
                 actor=f"upstream:{upstream.slug}", upstream=upstream.slug, role="member")
    return user, "provisioned"


def linked_user(session: Session, tenant: Tenant, upstream: Upstream,
                subject: str) -> User | None:
    """The account this upstream's ``subject`` is linked to in ``tenant``, if any."""
    link = session.scalar(select(UpstreamIdentity).where(
        UpstreamIdentity.upstream_id == upstream.id, UpstreamIdentity.subject == subject))
    user = session.get(User, link.user_id) if link is not None else None
    return user if user is not None and user.tenant_id == tenant.id else None


def _link(session: Session, upstream: Upstream, subject: str, user: User) -> None:
    session.add(UpstreamIdentity(upstream_id=upstream.id, user_id=user.id, subject=subject))
    session.flush()
