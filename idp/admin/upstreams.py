"""Upstream identity providers as admins add and change them (the console, ``idp upstream``):
every setting checked before anything is stored, each change audited. Its discovery document
is not fetched here.
"""

from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import Session

from flask_babel import gettext as _  # English outside a page (CLI, API)
from idp import audit
from idp.addresses import normalise_email
from idp.directory import SLUG, DirectoryError, NotFound
from idp.journey.upstream_trust import ACR_VALUE, TRUST_MFA
from idp.federation.endpoints import issuer_problem, listed_host
from idp.mfa.secrets import SecretBox
from idp.models import Tenant, Upstream

EMAIL_DOMAIN = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")

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
        raise DirectoryError(_("an identity provider's name is 1 to 200 characters (it is shown "
                               "on the sign-in button)"))
    return name


def _email_authority(email_domains, authoritative: bool) -> list[str]:
    """The domains as stored, once they are domains; authority needs some (an upstream
    authoritative for every address could claim anyone's)."""
    # In the one spelling of addresses (idp.addresses), which federation compares against.
    domains = list(dict.fromkeys(normalise_email(d).lstrip("@") for d in email_domains
                                 if d.strip()))
    bad = [d for d in domains if not EMAIL_DOMAIN.fullmatch(d)]
    if bad:
        raise DirectoryError(_("%(domain)s is not an email domain (like example.com)",
                               domain=repr(bad[0][:100])))
    if authoritative and not domains:
        raise DirectoryError(_("an identity provider can vouch for addresses only in email "
                               "domains listed for it: list its domains first"))
    return domains


def _upstream_trust(issuer: str, trust_mfa: str, trusted_acrs, back_channel_hosts):
    """(acr values, back-channel hosts) as stored, once they make sense for this upstream."""
    if trust_mfa not in TRUST_MFA:
        raise DirectoryError(f"trust-mfa must be one of {', '.join(TRUST_MFA)}")
    acrs = list(dict.fromkeys(trusted_acrs))
    bad = [a for a in acrs if not isinstance(a, str) or not ACR_VALUE.fullmatch(a)]
    if bad:
        raise DirectoryError(_("%(value)s is not an acr value (printable, no spaces, at most "
                               "200 characters)", value=repr(bad[0])))
    if acrs and trust_mfa == "never":
        raise DirectoryError("trusted acr values only count when the upstream's MFA may be "
                             "trusted (trust-mfa when_upstream_mfa or always)")
    try:
        hosts = list(dict.fromkeys(listed_host(h, issuer) for h in back_channel_hosts))
    except ValueError as e:
        raise DirectoryError(f"back-channel host {e}") from None
    return acrs, hosts

