"""What tenant admins do — policy, groups, per-user MFA state, login tokens, upstreams — as
functions the CLI and the console both call. Each records an audit event; callers commit.
"""

from __future__ import annotations

import logging
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from idp import audit, notify
from idp.addresses import normalise_email
from idp.federation.endpoints import issuer_problem, listed_host
from idp.guard import Guard, account_key
from idp.journey import login_links as tokens
from idp.directory import SLUG, DirectoryError, NotFound, _check_uri, _group, find_user
from idp.mfa.secrets import SecretBox
from idp.models import (Authenticator, Client, Group, LoginToken, Tenant, TenantPolicyRow,
                        Upstream, User)
from idp.journey.upstream_trust import ACR_VALUE, TRUST_MFA
from idp import hashing
from idp.policy import ALL_FACTORS, AdminState, Mode

EMAIL_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

FACTOR_NAMES = {"totp": "totp", "webauthn": "webauthn", "sms": "sms", "questions": "kba",
                "kba": "kba", "backup": "backup"}

log = logging.getLogger(__name__)


def policy_row(db: Session, tenant: Tenant) -> TenantPolicyRow:
    row = db.get(TenantPolicyRow, tenant.id)
    if row is None:
        row = TenantPolicyRow(tenant_id=tenant.id)
        db.add(row)
        db.flush()
    return row


def policy_dict(db: Session, tenant: Tenant) -> dict:
    row = policy_row(db, tenant)
    users = db.scalars(select(User.email).where(User.id.in_(row.users))).all() if row.users else []
    return {
        "tenant": tenant.slug,
        "mode": row.mode,
        "scope": "everyone" if row.everyone else "selected",
        "groups": list(row.groups),
        "users": sorted(users),
        "grace_until": row.grace_until.isoformat() if row.grace_until else None,
        "grace_skips": row.grace_skips,
        "factors": [f for f in ALL_FACTORS if f in row.allowed_factors],
        "roles_allowed": list(row.roles_allowed),
        "self_disable": row.self_disable,
        "login_token_bypass": row.login_token_bypass,
        "admin_login_links": row.admin_login_links,
        "federation_jit": row.federation_jit,
        "captcha_after": row.captcha_after,
        "lock_after": row.lock_after,
        "lock_minutes": row.lock_minutes,
        "lock_email_admins": row.lock_email_admins,
    }


def set_policy(db: Session, tenant: Tenant, actor: str, *, mode: str | None = None,
               factors: list[str] | None = None, groups: list[str] | None = None,
               users: list[str] | None = None, grace_days: int | None = None,
               grace_skips: int | None = None, roles_allowed: list[str] | None = None,
               self_disable: bool | None = None, login_token_bypass: bool | None = None,
               federation_jit: bool | None = None, captcha_after: int | None = None,
               lock_after: int | None = None, lock_minutes: int | None = None,
               lock_email_admins: bool | None = None,
               admin_login_links: bool | None = None) -> dict:
    """Change what is given; the scope is everyone unless groups or users are named."""
    row = policy_row(db, tenant)
    before = policy_dict(db, tenant)
    if mode is not None:
        try:
            row.mode = Mode(mode).value
        except ValueError:
            raise DirectoryError("mode must be disabled, optional or required") from None
    if factors is not None:
        unknown = [f for f in factors if f not in FACTOR_NAMES]
        if unknown or not factors:
            raise DirectoryError(f"factors must be among {', '.join(FACTOR_NAMES)}")
        row.allowed_factors = sorted({FACTOR_NAMES[f] for f in factors})
    if groups is not None or users is not None:
        if groups is not None:
            for name in groups:
                if db.scalar(select(Group.id).where(Group.tenant_id == tenant.id, Group.name == name)) is None:
                    raise NotFound(f"no group {name!r} in {tenant.slug}")
            row.groups = list(groups)
        if users is not None:
            ids = []
            for email in users:
                user = find_user(db, tenant, email)
                if user is None:
                    raise NotFound(f"no user {email} in {tenant.slug}")
                ids.append(user.id)
            row.users = ids
        row.everyone = not (row.groups or row.users)
    if grace_days is not None:
        if grace_days < 0:
            raise DirectoryError("grace days cannot be negative")
        row.grace_until = datetime.now(timezone.utc) + timedelta(days=grace_days) if grace_days else None
    if grace_skips is not None:
        if grace_skips < 0:
            raise DirectoryError("grace skips cannot be negative")
        row.grace_skips = grace_skips or None
    if roles_allowed is not None:
        bad = [r for r in roles_allowed if r not in ("admin", "member")]
        if bad:
            raise DirectoryError("roles must be among admin, member")
        row.roles_allowed = list(dict.fromkeys(roles_allowed))
    for name, value, low, high in (("captcha_after", captcha_after, 1, 100),
                                   ("lock_after", lock_after, 1, 100),
                                   ("lock_minutes", lock_minutes, 1, 7 * 24 * 60)):
        if value is not None:
            if not low <= value <= high:
                raise DirectoryError(f"{name.replace('_', '-')} must be from {low} to {high}")
            setattr(row, name, value)
    for name, value in (("self_disable", self_disable), ("login_token_bypass", login_token_bypass),
                        ("lock_email_admins", lock_email_admins),
                        ("admin_login_links", admin_login_links),
                        ("federation_jit", federation_jit)):
        if value is not None:
            setattr(row, name, value)
    db.flush()
    after = policy_dict(db, tenant)
    changed = {k: after[k] for k in after if after[k] != before[k]}
    audit.record(db, tenant.id, "policy.changed", actor=actor, changes=changed)
    return after


def create_group(db: Session, tenant: Tenant, name: str, actor: str) -> Group:
    if db.scalar(select(Group.id).where(Group.tenant_id == tenant.id, Group.name == name.strip())):
        raise DirectoryError(f"group {name!r} already exists")
    group = _group(db, tenant, name)
    audit.record(db, tenant.id, "group.created", actor=actor, group=group.name)
    return group


def add_to_group(db: Session, tenant: Tenant, name: str, email: str, actor: str) -> User:
    group = db.scalar(select(Group).where(Group.tenant_id == tenant.id, Group.name == name))
    if group is None:
        raise NotFound(f"no group {name!r} in {tenant.slug}")
    user = _user(db, tenant, email)
    if group not in user.groups:
        user.groups.append(group)
    audit.record(db, tenant.id, "group.member_added", actor=actor, user_id=user.id, group=name)
    return user


def remove_from_group(db: Session, tenant: Tenant, name: str, email: str, actor: str) -> User:
    user = _user(db, tenant, email)
    user.groups = [g for g in user.groups if g.name != name]
    audit.record(db, tenant.id, "group.member_removed", actor=actor, user_id=user.id, group=name)
    return user


def _user(db: Session, tenant: Tenant, email: str) -> User:
    user = find_user(db, tenant, email)
    if user is None:
        raise NotFound(f"no user {email} in {tenant.slug}")
    return user


def set_user_mfa(db: Session, tenant: Tenant, email: str, action: str, actor: str) -> User:
    """enforce (the user cannot turn it off), exempt, or reset (factors removed; set up again)."""
    user = _user(db, tenant, email)
    if action in ("enforce", "reset") and policy_row(db, tenant).mode == Mode.DISABLED.value:
        raise DirectoryError("Two-factor authentication is not available: the organisation has it "
                             "disabled (idp policy set SLUG --mode optional|required)")
    if action == "enforce":
        user.mfa_admin_state = AdminState.ENFORCED.value
    elif action == "exempt":
        user.mfa_admin_state = AdminState.EXEMPT.value
    elif action == "default":
        user.mfa_admin_state = AdminState.DEFAULT.value
    elif action == "reset":
        removed = db.execute(delete(Authenticator).where(Authenticator.user_id == user.id)).rowcount
        user.mfa_must_reenroll = True
        user.mfa_skips_used = 0
        audit.record(db, tenant.id, "mfa.reset", actor=actor, user_id=user.id, removed=removed)
        return user
    else:
        raise DirectoryError("the action must be enforce, exempt, default or reset")
    audit.record(db, tenant.id, f"mfa.{action}", actor=actor, user_id=user.id)
    return user


def unlock(db: Session, guard: Guard, tenant: Tenant, email: str, actor: str) -> User:
    """End a lock now (and forget the failures that led to it)."""
    user = _user(db, tenant, email)
    key = account_key(tenant.id, user.id, user.email)
    was = guard.failures(key)
    guard.clear(key)
    audit.record(db, tenant.id, "account.unlocked", actor=actor, user_id=user.id, failures=was)
    return user


@dataclass(frozen=True)
class IssuedLoginToken:
    url: str
    expires_at: datetime


class PrivilegedLinkRefused(DirectoryError):
    """The tenant's policy does not allow sign-in links for the user's role (an administrator)."""

    def __init__(self, tenant: Tenant, user: User):
        super().__init__(f"sign-in links for administrators are off in {tenant.slug}, and "
                         f"{user.email} is an administrator")


class OwnerNotTold(DirectoryError):
    """The mail telling an administrator of their new sign-in link was not handed over, so no
    link was made; ``reason`` is the sender's, for operators."""

    def __init__(self, user: User, reason: str):
        super().__init__(f"no sign-in link was created: the mail telling {user.email} about it "
                         f"could not be sent ({reason}); try again later")
        self.reason = reason


def create_login_token(db: Session, tenant: Tenant, email: str, base_url: str, actor: str,
                       ttl_minutes: int = 15, *, mail) -> IssuedLoginToken:
    """A one-time sign-in link for ``email``; its owner is mailed (through ``mail``, the
    configured sender) who created it and when. For an administrator the tenant must allow such
    links, and no link is made unless the mail was handed over: the owner is the one who can
    tell a takeover from a rescue. A member's link is made even when the mail fails (logged)."""
    if not 1 <= ttl_minutes <= 7 * 24 * 60:
        raise DirectoryError("a login token lives from 1 minute to 7 days")
    user = _user(db, tenant, email)
    if not tokens.allowed_for(db, tenant, user):
        raise PrivilegedLinkRefused(tenant, user)
    now = datetime.now(timezone.utc)
    expires = now + timedelta(minutes=ttl_minutes)
    notified = _tell_link_owner(mail, tenant, user, actor, now, expires)
    token = secrets.token_urlsafe(32)
    db.add(LoginToken(tenant_id=tenant.id, user_id=user.id, token_hash=hashing.digest("login-token", token),
                      created_by=actor, expires_at=expires))
    audit.record(db, tenant.id, "login_token.created", actor=actor, user_id=user.id,
                 ttl_minutes=ttl_minutes, role=user.role, owner_notified=notified)
    return IssuedLoginToken(f"{base_url}/t/{tenant.slug}/login/token/{token}", expires)


def _tell_link_owner(mail, tenant: Tenant, user: User, actor: str, at: datetime,
                     expires: datetime) -> bool:
    """Mail the owner of a new sign-in link (never the link itself); False when a member's
    mail could not be sent (logged), OwnerNotTold when an administrator's could not."""
    who = "an operator of this service, from the command line" if actor == "cli" else actor
    text = (
        f"Hello {user.name or user.email},\n\n"
        f"A sign-in link was created for your {tenant.name} account ({user.email}) by {who} "
        f"at {at.strftime('%Y-%m-%d %H:%M UTC')}. Whoever opens it can sign in as you without "
        f"your password, once, until {expires.strftime('%Y-%m-%d %H:%M UTC')}.\n\n"
        "If you asked for it, there is nothing to do. If you did not expect this, tell your "
        "security team now.\n"
    )
    try:
        mail.send(user.email, f"A sign-in link was created for your {tenant.name} account", text)
    except notify.SendError as e:
        if tokens.privileged(user):
            raise OwnerNotTold(user, str(e)) from None
        log.error("sign-in link notice to a user of %s not sent: %s", tenant.slug, e)
        return False
    return True


KEEP = object()  # update_upstream: leave this setting as it is


def add_upstream(db: Session, box: SecretBox, tenant: Tenant, *, slug: str, name: str,
                 issuer: str, client_id: str, client_secret: str, email_domains: list[str],
                 trust_mfa: str, actor: str, trusted_acrs: list[str] = (),
                 back_channel_hosts: list[str] = (), email_authoritative: bool = False,
                 jit: bool | None = None) -> Upstream:
    """A new upstream. ``trusted_acrs``: its acr values that prove MFA, exactly
    (``upstream_trust``); ``back_channel_hosts``: hosts besides the issuer's its token endpoint
    and keys may be on (``federation.endpoints``); ``email_authoritative``: its word on an
    address in ``email_domains`` counts without ``email_verified``; ``jit``: accounts created
    on first sign-in (None: as the tenant's policy says). Its discovery is not fetched here."""
    if not SLUG.fullmatch(slug or ""):
        raise DirectoryError("an upstream's slug is lower-case letters, digits and hyphens")
    issuer = (issuer or "").rstrip("/")
    problem = issuer_problem(issuer)
    if problem:
        raise DirectoryError(problem)
    acrs, hosts = _upstream_trust(issuer, trust_mfa, trusted_acrs, back_channel_hosts)
    domains = _email_authority(email_domains, email_authoritative)
    if not client_id or not client_secret:
        raise DirectoryError("an upstream needs a client id and a client secret")
    if db.scalar(select(Upstream.id).where(Upstream.tenant_id == tenant.id, Upstream.slug == slug)):
        raise DirectoryError(f"upstream {slug!r} already exists")
    upstream = Upstream(tenant_id=tenant.id, slug=slug, name=_upstream_name(name), issuer=issuer,
                        client_id=client_id, client_secret_sealed=box.encrypt(client_secret),
                        email_domains=domains, trust_mfa=trust_mfa, trusted_acrs=acrs,
                        back_channel_hosts=hosts, email_authoritative=email_authoritative,
                        jit=jit)
    db.add(upstream)
    db.flush()
    audit.record(db, tenant.id, "upstream.added", actor=actor, upstream=slug, issuer=issuer,
                 trust_mfa=trust_mfa, trusted_acrs=acrs, back_channel_hosts=hosts,
                 email_domains=domains, email_authoritative=email_authoritative, jit=jit)
    return upstream


def find_upstream(db: Session, tenant: Tenant, slug: str) -> Upstream:
    upstream = db.scalar(select(Upstream).where(Upstream.tenant_id == tenant.id,
                                                Upstream.slug == slug))
    if upstream is None:
        raise NotFound(f"no upstream {slug!r} in {tenant.slug}")
    return upstream


def update_upstream(db: Session, tenant: Tenant, slug: str, actor: str, *,
                    trust_mfa=KEEP, trusted_acrs=KEEP, back_channel_hosts=KEEP, name=KEEP,
                    email_domains=KEEP, email_authoritative=KEEP, jit=KEEP) -> Upstream:
    """Change what is given (``KEEP``: unchanged; ``jit=None`` follows the tenant's policy),
    with the checks of ``add_upstream``; nothing changes unless everything passes."""
    upstream = find_upstream(db, tenant, slug)

    def given(value, current):
        return current if value is KEEP else value

    trust = given(trust_mfa, upstream.trust_mfa)
    acrs, hosts = _upstream_trust(upstream.issuer, trust,
                                  given(trusted_acrs, upstream.trusted_acrs),
                                  given(back_channel_hosts, upstream.back_channel_hosts))
    authoritative = given(email_authoritative, upstream.email_authoritative)
    wanted = {
        "name": _upstream_name(given(name, upstream.name)), "trust_mfa": trust,
        "trusted_acrs": acrs, "back_channel_hosts": hosts,
        "email_domains": _email_authority(given(email_domains, upstream.email_domains),
                                          bool(authoritative)),
        "email_authoritative": bool(authoritative),
        "jit": given(jit, upstream.jit),
    }
    changes = {k: v for k, v in wanted.items() if v != getattr(upstream, k)}
    for key, value in changes.items():
        setattr(upstream, key, value)
    if changes:
        audit.record(db, tenant.id, "upstream.updated", actor=actor, upstream=slug,
                     changes=changes)
    return upstream


def _upstream_name(name) -> str:
    name = (name or "").strip()
    if not name or len(name) > 200:
        raise DirectoryError("an identity provider's name is 1 to 200 characters (it is shown "
                             "on the sign-in button)")
    return name


def _email_authority(email_domains, authoritative: bool) -> list[str]:
    """The domains as stored, once they are domains; authority needs some (an upstream
    authoritative for every address could claim anyone's)."""
    # In the one spelling of addresses (idp.addresses), which federation compares against.
    domains = list(dict.fromkeys(normalise_email(d).lstrip("@") for d in email_domains
                                 if d.strip()))
    bad = [d for d in domains if not EMAIL_DOMAIN.fullmatch(d)]
    if bad:
        raise DirectoryError(f"{bad[0][:100]!r} is not an email domain (like example.com)")
    if authoritative and not domains:
        raise DirectoryError("an identity provider can vouch for addresses only in email "
                             "domains listed for it: list its domains first")
    return domains


def _upstream_trust(issuer: str, trust_mfa: str, trusted_acrs, back_channel_hosts):
    """(acr values, back-channel hosts) as stored, once they make sense for this upstream."""
    if trust_mfa not in TRUST_MFA:
        raise DirectoryError(f"trust-mfa must be one of {', '.join(TRUST_MFA)}")
    acrs = list(dict.fromkeys(trusted_acrs))
    bad = [a for a in acrs if not isinstance(a, str) or not ACR_VALUE.fullmatch(a)]
    if bad:
        raise DirectoryError(f"{bad[0]!r} is not an acr value (printable, no spaces, at most "
                             f"200 characters)")
    if acrs and trust_mfa == "never":
        raise DirectoryError("trusted acr values only count when the upstream's MFA may be "
                             "trusted (trust-mfa when_upstream_mfa or always)")
    try:
        hosts = list(dict.fromkeys(listed_host(h, issuer) for h in back_channel_hosts))
    except ValueError as e:
        raise DirectoryError(f"back-channel host {e}") from None
    return acrs, hosts


# Portals (OAuth clients): the console registers, edits, rotates and deletes them. A client's
# secret is shown once to the caller and stored only as a hash (``idp.hashing``).

MIN_ACRS = (None, "pwd", "mfa", "phr")


def _client(db: Session, tenant: Tenant, client_id: str):
    client = db.scalar(select(Client).where(Client.tenant_id == tenant.id,
                                            Client.client_id == (client_id or "")))
    if client is None:
        raise NotFound(f"no portal {client_id!r} in {tenant.slug}")
    return client


def register_client(db: Session, tenant: Tenant, actor: str, name: str, redirect_uris: list[str],
                    **options):
    """``directory.create_client`` (same checks, same options), audited with the admin as actor."""
    from idp.directory import create_client

    return create_client(db, tenant, name, redirect_uris, actor=actor, **options)


def update_client(db: Session, tenant: Tenant, client_id: str, actor: str, *,
                  name: str | None = None, redirect_uris: list[str] | None = None,
                  post_logout_redirect_uris: list[str] | None = None,
                  min_acr: str | None | bool = False):
    """Change what is given (``min_acr=False``: unchanged; None or "pwd": no floor). Exact URIs
    are checked as ``create_client`` checks them; nothing changes if one is wrong."""
    client = _client(db, tenant, client_id)
    changes: dict = {}
    if name is not None:
        if not name.strip():
            raise DirectoryError("a client needs a name")
        if name.strip() != client.name:
            changes["name"] = name.strip()
    if redirect_uris is not None:
        uris = [_check_uri(u, "redirect URI") for u in dict.fromkeys(redirect_uris)]
        if "authorization_code" in client.grant_types and not uris:
            raise DirectoryError("the authorization_code grant needs at least one redirect URI")
        if uris != list(client.redirect_uris):
            changes["redirect_uris"] = uris
    if post_logout_redirect_uris is not None:
        uris = [_check_uri(u, "post-logout redirect URI")
                for u in dict.fromkeys(post_logout_redirect_uris)]
        if uris != list(client.post_logout_redirect_uris):
            changes["post_logout_redirect_uris"] = uris
    if min_acr is not False:
        if min_acr not in MIN_ACRS:
            raise DirectoryError("the minimum acr must be pwd, mfa or phr")
        floor = min_acr if min_acr != "pwd" else None
        if floor != client.min_acr:
            changes["min_acr"] = floor
    for key, value in changes.items():
        setattr(client, key, value)  # new lists: JSON columns see assignment, not mutation
    db.flush()
    audit.record(db, tenant.id, "client.updated", actor=actor, client_id=client.client_id,
                 changes=changes)
    return client


def rotate_client_secret(db: Session, tenant: Tenant, client_id: str, actor: str) -> str:
    """A new secret, returned once; the old one stops working now."""
    client = _client(db, tenant, client_id)
    if client.is_public:
        raise DirectoryError("a public client has no secret to rotate")
    secret = hashing.new_secret()
    client.secret_hash = hashing.digest("client-secret", secret)
    db.flush()
    audit.record(db, tenant.id, "client.secret_rotated", actor=actor, client_id=client.client_id)
    return secret


def delete_client(db: Session, tenant: Tenant, client_id: str, actor: str) -> str:
    """Remove a client; its codes and tokens go with it (ON DELETE CASCADE). Returns its name."""
    client = _client(db, tenant, client_id)
    name, cid = client.name, client.client_id
    db.expunge(client)
    db.execute(delete(Client).where(Client.id == client.id, Client.tenant_id == tenant.id))
    audit.record(db, tenant.id, "client.deleted", actor=actor, client_id=cid, name=name)
    return name
