"""A tenant's branding as admins set it (the console's Branding page; the admin API): the
display name, the primary colour, the support link and address, the logo. Every check is
here, each refusal says what to change, and each change is audited with the admin.

- The colour must let people read: WCAG 2.2 AA asks 4.5:1 for normal text (SC 1.4.3). Pages
  draw links in it on white and white text on its buttons; contrast is symmetric, so one
  ratio against white decides both, and a refusal says by how much and offers a darker shade
  of the same colour that passes.
- The logo is decoded and encoded again with Pillow: what we keep and serve is pixels we
  wrote, never the bytes uploaded (no metadata such as a photo's location, no file that is an
  image and a script at once). Judged by its content, not its name: PNG, JPEG or WebP. SVG is
  refused (it can carry scripts); GIF too (its animations are distracting in a sign-in card,
  and a still logo is a PNG). Its pixels are capped, so a logo stays small in pages and mail.
"""

from __future__ import annotations

import hashlib
import io
import math
import re
import unicodedata
import warnings
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from flask_babel import gettext as _
from PIL import Image, ImageOps, UnidentifiedImageError
from sqlalchemy.orm import Session

from idp import audit
from idp.models import TenantBranding
from idp.models.base import utcnow

MAX_LOGO_BYTES = 200 * 1024  # what an upload may weigh (the app takes 256 KB per request)
# Wider or taller than this is not a logo: refused before decoding, which costs memory by
# pixels, not bytes (2048 × 2048 × 4 bytes, 16 MB, at most; and each copy as much again).
MAX_SOURCE_PIXELS = 2048
LOGO_BOX = (800, 400)  # larger logos are scaled down to fit (3x a 48 px high header is 144)
MAX_DISPLAY_NAME = 100
MAX_SUPPORT_URL = 500
MIN_CONTRAST = 4.5  # WCAG 2.2 SC 1.4.3, level AA, normal text
FORMATS = {"PNG": "image/png", "JPEG": "image/jpeg", "WEBP": "image/webp"}
HEX_COLOUR = re.compile(r"#[0-9a-f]{6}")
# An address that is also a safe mailto: link (nothing a URL would read as ?cc=, &, #).
EMAIL = re.compile(r"[A-Za-z0-9._+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+")
CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")
# Invisible formatting (right-to-left overrides, zero-width characters), private use and lone
# surrogates: text that reads otherwise than it is, in a page title or a mail's sender name.
INVISIBLE = {"Cf", "Co", "Cs"}


@dataclass
class BrandingRefused(Exception):
    """What was refused, by field (``display_name``, ``accent``, ``support_url``,
    ``support_email``, ``logo``): one message for a person each."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return " ".join(self.errors.values())


# -- colour ------------------------------------------------------------------------------------

def _channel(value: int) -> float:
    c = value / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def luminance(colour: str) -> float:
    """WCAG 2.x relative luminance of ``#rrggbb``."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return 0.2126 * _channel(r) + 0.7152 * _channel(g) + 0.0722 * _channel(b)


def contrast_with_white(colour: str) -> float:
    return 1.05 / (luminance(colour) + 0.05)


def darker_that_passes(colour: str) -> str:
    """The lightest shade of ``colour`` (same hue, scaled towards black) that passes."""
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    for step in range(100, -1, -1):
        k = step / 100
        shade = "#{:02x}{:02x}{:02x}".format(int(r * k), int(g * k), int(b * k))
        if contrast_with_white(shade) >= MIN_CONTRAST:
            return shade
    return "#000000"


def check_accent(value: str | None) -> str | None:
    """The colour as stored (``#rrggbb``, lower case), None for the default colours."""
    value = (value or "").strip().lower()
    if not value:
        return None
    if len(value) == 6 and HEX_COLOUR.fullmatch("#" + value):
        value = "#" + value
    if not HEX_COLOUR.fullmatch(value):
        raise ValueError(_("Enter the colour as # and six hexadecimal digits, for example #1d4ed8."))
    ratio = contrast_with_white(value)
    if ratio < MIN_CONTRAST:
        shown = "{:.2f}".format(math.floor(ratio * 100) / 100)  # never rounded up to a pass
        raise ValueError(_(
            "%(colour)s is too light to read: against white it has a contrast of %(ratio)s to 1, "
            "and both links on white pages and white text on its buttons need at least "
            "%(needed)s to 1 (WCAG AA). A darker shade such as %(suggestion)s passes.",
            colour=value, ratio=shown, needed="{:g}".format(MIN_CONTRAST),
            suggestion=darker_that_passes(value)))
    return value


# -- names and contacts ------------------------------------------------------------------------

def check_display_name(value: str | None) -> str | None:
    value = " ".join((value or "").split())
    if not value:
        return None
    if CONTROL.search(value) or any(unicodedata.category(c) in INVISIBLE for c in value):
        raise ValueError(_("The display name cannot contain control characters."))
    if len(value) > MAX_DISPLAY_NAME:
        raise ValueError(_("The display name can be at most %(max)d characters long.",
                           max=MAX_DISPLAY_NAME))
    return value


def check_support_url(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > MAX_SUPPORT_URL or CONTROL.search(value) or " " in value:
        raise ValueError(_("Enter a web address of at most %(max)d characters, without spaces.",
                           max=MAX_SUPPORT_URL))
    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError:
        parts = None
    if parts is None or parts.scheme != "https" or not parts.hostname:
        raise ValueError(_("Enter a web address that starts with https://, for example "
                           "https://help.example.com."))
    if parts.username is not None or parts.password is not None:
        raise ValueError(_("The support link cannot contain a user name or password."))
    return value


def check_support_email(value: str | None) -> str | None:
    value = (value or "").strip()
    if not value:
        return None
    if len(value) > 320 or not EMAIL.fullmatch(value):
        raise ValueError(_("Enter an email address such as help@example.com."))
    return value


# -- the logo ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class Logo:
    data: bytes
    content_type: str
    sha256: str
    width: int
    height: int


def _looks_like_svg(data: bytes) -> bool:
    head = data[:2048].lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    return head.startswith((b"<svg", b"<?xml", b"<!doctype svg")) or b"<svg" in head


def prepare_logo(data: bytes) -> Logo:
    """The logo as we keep it: decoded, checked, scaled into ``LOGO_BOX``, encoded again
    without metadata; ValueError with a message for the admin otherwise."""
    if len(data) > MAX_LOGO_BYTES:
        raise ValueError(_("The file is %(size)d KB; a logo can be at most %(max)d KB.",
                           size=-(-len(data) // 1024), max=MAX_LOGO_BYTES // 1024))
    if not data:
        raise ValueError(_("The file is empty. Choose a PNG, JPEG or WebP image."))
    if _looks_like_svg(data):
        raise ValueError(_("SVG images are not accepted: they can contain scripts. "
                           "Upload the logo as a PNG, JPEG or WebP image."))
    not_an_image = _("This file is not a PNG, JPEG or WebP image, whatever its name says. "
                     "Choose an image in one of these formats.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            # Only the parsers of the formats we take, never Pillow's dozens of others.
            image = Image.open(io.BytesIO(data), formats=["PNG", "JPEG", "WEBP", "GIF"])
            if image.format == "GIF":
                raise ValueError(_("GIF images are not accepted. Upload the logo as a PNG, "
                                   "JPEG or WebP image."))
            # Cameras and phones write JPEGs with a second picture inside (MPO): still a JPEG.
            source_format = "JPEG" if image.format == "MPO" else image.format
            if source_format not in FORMATS:
                raise ValueError(not_an_image)
            width, height = image.size
            if width > MAX_SOURCE_PIXELS or height > MAX_SOURCE_PIXELS:
                raise ValueError(_("The image is %(width)d × %(height)d pixels; a logo can be "
                                   "at most %(max)d pixels wide and high.",
                                   width=width, height=height, max=MAX_SOURCE_PIXELS))
            image.seek(0)  # an animated PNG or WebP: its first frame
            if source_format == "JPEG":
                image.draft("RGB", LOGO_BOX)  # decode a large JPEG at a fraction of its size
            image.load()
            image = ImageOps.exif_transpose(image)  # as the camera held it; the EXIF goes
    except ValueError:
        raise
    except (UnidentifiedImageError, OSError, SyntaxError, EOFError,
            Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ValueError(not_an_image) from None
    transparent = image.mode in ("RGBA", "LA", "PA") or (
        image.mode == "P" and "transparency" in image.info)
    image = image.convert("RGBA" if transparent and source_format != "JPEG" else "RGB")
    image.thumbnail(LOGO_BOX, Image.Resampling.LANCZOS)
    out = io.BytesIO()
    if source_format == "JPEG":
        image.save(out, "JPEG", quality=88, optimize=True)
    elif source_format == "WEBP":
        image.save(out, "WEBP", quality=90, method=4)
    else:
        image.save(out, "PNG", optimize=True)
    kept = out.getvalue()
    if len(kept) > MAX_LOGO_BYTES:  # rare: a small file that decodes into noise
        raise ValueError(_("This image is too detailed to keep as a logo. Try a simpler or "
                           "smaller image."))
    return Logo(kept, FORMATS[source_format], hashlib.sha256(kept).hexdigest(), *image.size)


# -- changes ---------------------------------------------------------------------------------

def _row(db: Session, tenant_id: int) -> TenantBranding:
    row = db.get(TenantBranding, tenant_id)
    if row is None:
        row = TenantBranding(tenant_id=tenant_id)
        db.add(row)
    return row


TEXT_FIELDS = {"display_name": check_display_name, "accent": check_accent,
               "support_url": check_support_url, "support_email": check_support_email}


def update(db: Session, tenant_id: int, actor: str, **values: str | None) -> TenantBranding:
    """Set the text settings given (a field left out stays as it is; empty clears it). All
    are checked before anything changes: ``BrandingRefused`` names every field refused."""
    unknown = set(values) - set(TEXT_FIELDS)
    if unknown:
        raise TypeError(f"unknown branding settings: {sorted(unknown)}")
    checked, errors = {}, {}
    for name, value in values.items():
        try:
            checked[name] = TEXT_FIELDS[name](value)
        except ValueError as e:
            errors[name] = str(e)
    if errors:
        raise BrandingRefused(errors)
    row = _row(db, tenant_id)
    changed = {name: value for name, value in checked.items() if getattr(row, name) != value}
    if changed:
        for name, value in changed.items():
            setattr(row, name, value)
        row.updated_at = utcnow()
        audit.record(db, tenant_id, "branding.changed", actor=actor, **changed)
    return row


def set_logo(db: Session, tenant_id: int, actor: str, data: bytes) -> Logo:
    """Check and keep ``data`` as the tenant's logo; ``BrandingRefused`` (field ``logo``)."""
    try:
        logo = prepare_logo(data)
    except ValueError as e:
        raise BrandingRefused({"logo": str(e)}) from None
    row = _row(db, tenant_id)
    row.logo, row.logo_type, row.logo_hash = logo.data, logo.content_type, logo.sha256
    row.updated_at = utcnow()
    audit.record(db, tenant_id, "branding.logo_set", actor=actor, content_type=logo.content_type,
                 sha256=logo.sha256, bytes=len(logo.data), width=logo.width, height=logo.height)
    return logo


def remove_logo(db: Session, tenant_id: int, actor: str) -> bool:
    """Remove the tenant's logo; False when it had none."""
    row = db.get(TenantBranding, tenant_id)
    if row is None or row.logo_hash is None:
        return False
    row.logo = row.logo_type = row.logo_hash = None
    row.updated_at = utcnow()
    audit.record(db, tenant_id, "branding.logo_removed", actor=actor)
    return True
