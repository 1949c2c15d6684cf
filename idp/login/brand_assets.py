"""A tenant's branding as files of our own origin: its stylesheet (the colour; pages allow no
inline style) and its logo. Both URLs change with what they show (``?v=`` the brand's version,
the logo's hash in its name), so browsers may keep them for a year."""

from __future__ import annotations

from flask import Blueprint, Response, abort, g, request
from flask_babel import gettext as _

from idp import branding, db
from idp.web import load_tenant

bp = Blueprint("branding", __name__, url_prefix="/t/<tenant>")
bp.url_value_preprocessor(load_tenant)

FOREVER = "public, max-age=31536000, immutable"


@bp.get("/branding.css")
def stylesheet():
    brand = g.tenant.brand
    response = Response(branding.stylesheet(brand), mimetype="text/css")
    # An old version's URL gets today's sheet, but only for a short while.
    response.headers["Cache-Control"] = (FOREVER if request.args.get("v") == brand.version
                                         else "public, max-age=60")
    return response


@bp.get("/branding/logo/<name>")
def logo(name: str):
    if name != g.tenant.brand.logo_name:
        abort(404, description=_("There is no such image here."))
    found = branding.logo(db.session(), g.tenant.id)
    if found is None or branding.Brand(logo_hash=found[2], logo_type=found[1]).logo_name != name:
        abort(404, description=_("There is no such image here."))
    data, content_type, _hash = found
    response = Response(data, content_type=content_type)
    response.headers.update({
        "Cache-Control": FOREVER,
        "Content-Disposition": "inline",
        "X-Content-Type-Options": "nosniff",
        # Opened on its own, the image may do nothing: no script, style or frame.
        "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    })
    return response
