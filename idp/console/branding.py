"""The console's Branding page (administrators only): the display name, the primary colour,
the support link and address, and the logo, with a preview of how they look. Every check and
change is ``idp.admin.branding``'s; a refusal is shown under its field."""

from __future__ import annotations

from flask import flash, g, redirect, render_template, request, url_for
from flask_babel import gettext as _
from werkzeug.exceptions import RequestEntityTooLarge

from idp import db
from idp.admin import branding as brand_admin
from idp.console.views import bp
from idp.models import TenantBranding
from idp.web import TITLES, _page_description, error_page

# What the upload's request may weigh: more than the app's 256 KB, so that a logo a little too
# heavy is read and refused with its size under its field instead of a bare error page.
UPLOAD_REQUEST_LIMIT = 1024 * 1024


@bp.url_value_preprocessor
def _room_for_a_logo(endpoint, values) -> None:
    # Before any before_request (the CSRF check reads the form first).
    if endpoint == "console.branding_logo":
        request.max_content_length = UPLOAD_REQUEST_LIMIT


def _saved() -> dict:
    row = db.session().get(TenantBranding, g.tenant.id)
    return {name: (getattr(row, name) or "") if row else "" for name in brand_admin.TEXT_FIELDS}


def _render(status: int = 200, form: dict | None = None, errors: dict | None = None):
    return render_template("console/branding.html", form=form or _saved(), errors=errors or {},
                           max_kb=brand_admin.MAX_LOGO_BYTES // 1024, box=brand_admin.LOGO_BOX,
                           max_name=brand_admin.MAX_DISPLAY_NAME,
                           max_url=brand_admin.MAX_SUPPORT_URL), status


def _too_large_message() -> str:
    return _("The file is larger than %(max)d KB, the most a logo can be.",
             max=brand_admin.MAX_LOGO_BYTES // 1024)


@bp.errorhandler(RequestEntityTooLarge)
def _too_large(error):
    """A request over even the upload's limit is refused before anything reads it (and before
    the console's gate): back to the page, which says why under the logo field."""
    if request.endpoint == "console.branding_logo":
        return redirect(url_for("console.branding", tenant=g.tenant.slug, refused="too-large"))
    return error_page(413, TITLES[413], _page_description(error))


@bp.get("/branding", endpoint="branding")
def branding_page():
    if request.args.get("refused") == "too-large":
        return _render(errors={"logo": _too_large_message()})
    return _render()


@bp.post("/branding")
def branding_save():
    form = {name: request.form.get(name, "")[:1000] for name in brand_admin.TEXT_FIELDS}
    try:
        brand_admin.update(db.session(), g.tenant.id, g.admin.email, **form)
    except brand_admin.BrandingRefused as refused:
        return _render(400, form, refused.errors)
    flash(_("The branding is saved. Sign-in pages, the console and mail use it from now on."))
    return redirect(url_for("console.branding", tenant=g.tenant.slug))


@bp.post("/branding/logo", endpoint="branding_logo")
def branding_logo():
    try:
        upload = request.files.get("logo")
    except RequestEntityTooLarge:
        return _render(413, errors={"logo": _too_large_message()})
    if upload is None or not upload.filename:
        return _render(400, errors={"logo": _("Choose an image file to upload.")})
    data = upload.stream.read(brand_admin.MAX_LOGO_BYTES + 1)
    if len(data) > brand_admin.MAX_LOGO_BYTES:
        data += upload.stream.read()  # its whole size, to say it
    try:
        brand_admin.set_logo(db.session(), g.tenant.id, g.admin.email, data)
    except brand_admin.BrandingRefused as refused:
        return _render(400, errors=refused.errors)
    flash(_("The logo is saved."))
    return redirect(url_for("console.branding", tenant=g.tenant.slug))


@bp.post("/branding/logo/remove")
def branding_logo_remove():
    if brand_admin.remove_logo(db.session(), g.tenant.id, g.admin.email):
        flash(_("The logo is removed."))
    return redirect(url_for("console.branding", tenant=g.tenant.slug))
