"""What a tenant's pages and mail show of its branding, as every request reads it.

``Brand`` is the frozen snapshot kept with the tenant in each worker's cache (``idp.web``'s
``TenantRef``), never the logo's bytes: those are read only to serve the image or to mail it
(``logo``). What admins may set, and the checks, are ``idp.admin.branding``'s.

The pages' strict CSP forbids inline styles, so the colour reaches pages through a tiny
stylesheet of the tenant's (``stylesheet``), served from our origin with the brand's version in
its URL; mail clients need inline styles, so the mail layout writes the colour itself.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from idp.models import TenantBranding

# The content types a stored logo may have, and the extension its URL ends with.
LOGO_TYPES = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True)
class Brand:
    display_name: str | None = None
    accent: str | None = None  # "#rrggbb"
    support_url: str | None = None
    support_email: str | None = None
    logo_hash: str | None = None
    logo_type: str | None = None

    @property
    def version(self) -> str:
        """Changes whenever what the stylesheet or logo URL shows changes (cache busting)."""
        seen = f"{self.accent}|{self.logo_hash}"
        return hashlib.sha256(seen.encode()).hexdigest()[:12]

    @property
    def logo_name(self) -> str | None:
        """The logo's file name in its URL: its hash and the extension of its type."""
        if not self.logo_hash or self.logo_type not in LOGO_TYPES:
            return None
        return f"{self.logo_hash[:16]}.{LOGO_TYPES[self.logo_type]}"

    @property
    def has_support(self) -> bool:
        return bool(self.support_url or self.support_email)


PLAIN = Brand()


def from_row(row: TenantBranding | None) -> Brand:
    if row is None:
        return PLAIN
    return Brand(row.display_name or None, row.accent or None, row.support_url or None,
                 row.support_email or None, row.logo_hash or None, row.logo_type or None)


def load(db: Session, tenant_id: int) -> Brand:
    return from_row(db.get(TenantBranding, tenant_id))


def logo(db: Session, tenant_id: int) -> tuple[bytes, str, str] | None:
    """The tenant's logo: (bytes, content type, hash), or None without one."""
    found = db.execute(select(TenantBranding.logo, TenantBranding.logo_type,
                              TenantBranding.logo_hash)
                       .where(TenantBranding.tenant_id == tenant_id)).first()
    if found is None or found.logo is None or found.logo_type not in LOGO_TYPES:
        return None
    return bytes(found.logo), found.logo_type, found.logo_hash


def stylesheet(brand: Brand) -> str:
    """The tenant's stylesheet: its colour as ``--accent`` (idp.css and console.css draw
    buttons, links, focus rings and the tenant's name with it). Empty without a colour."""
    if not brand.accent:
        return "/* no branding colour: the default colours apply */\n"
    # Links take the colour on light backgrounds only: its contrast was checked against white.
    return (f":root {{ --accent: {brand.accent}; }}\n"
            "@media (prefers-color-scheme: light) { a:not(.button) { color: var(--accent); } }\n")


# -- mail ------------------------------------------------------------------------------------
# Mail shows the logo as a part of the message itself (multipart/related, ``cid:``), not as a
# link to our origin: mail clients show it without fetching anything (most block remote
# images until the reader allows them, and a fetch would tell us who opened the mail), and
# it shows even where our origin cannot be reached (an IdP on an internal network). The
# message names the logo by its hash; the sender attaches the tenant's logo at delivery.

MAIL_ACCENT = "#1d4ed8"  # the mail layout's colour without branding
_LOGO_CID = re.compile(r"cid:(logo\.[0-9a-f]{16}@[A-Za-z0-9.\-]+)")


def mail_context(db: Session, tenant_id: int | None, tenant_name: str, domain: str | None) -> dict:
    """What the mail templates are given of the tenant: ``tenant`` (the name to show) and
    ``brand`` (colour, the logo's ``cid``, support contacts)."""
    brand = load(db, tenant_id) if tenant_id is not None else PLAIN
    cid = f"logo.{brand.logo_hash[:16]}@{domain or 'idp.invalid'}" if brand.logo_name else None
    return {"tenant": brand.display_name or tenant_name,
            "brand": {"accent": brand.accent or MAIL_ACCENT, "logo_cid": cid,
                      "support_url": brand.support_url, "support_email": brand.support_email}}


def mail_dressing(db: Session, tenant_id: int | None, html: str | None) -> dict:
    """What the sender adds to a tenant's message at delivery: ``from_name`` (the display
    name) and ``images`` (the logo, under the ``cid`` its HTML names). Empty without branding."""
    if tenant_id is None:
        return {}
    brand = load(db, tenant_id)
    dressing: dict = {}
    if brand.display_name:
        dressing["from_name"] = brand.display_name
    named = _LOGO_CID.search(html or "")
    if named:
        found = logo(db, tenant_id)
        if found is not None:  # a logo changed since: the current one; removed: none
            data, content_type, _ = found
            dressing["images"] = [(named.group(1), data, content_type)]
    return dressing
