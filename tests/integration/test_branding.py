"""Branding per tenant (issue 21 point 5): what an administrator sets on the console's
Branding page — display name, logo, colour, support contacts — is what the sign-in pages, the
error and lock pages, the console and the mail show; what could harm or cannot be read is
refused with a reason under its field."""

from __future__ import annotations

import io
import re

from PIL import Image, PngImagePlugin
from sqlalchemy import select

from idp import db, directory
from idp.models import AuditEvent
from tests.support.api import api_for
from tests.support.branding import (branding_page, image_bytes, noisy_png, save_branding,
                                    upload_logo)
from tests.support.console import admin_browser
from tests.support.journey import CSRF, field
from tests.support.lifecycle import add_user
from tests.support.mailbox import mailing_app, smtp_mailbox
from tests.support.signin import fail_until_locked

LOGO_SRC = re.compile(r'<img src="(/t/[^"]+/branding/logo/[0-9a-f]{16}\.(?:png|jpg|webp))"')
STYLESHEET = re.compile(r'<link rel="stylesheet" href="(/t/[^"]+/branding\.css\?v=[0-9a-f]+)">')


def field_error(page: str, name: str, focused: bool = True) -> str:
    """The message under the field ``name``, which points at it (and has the focus: the first
    field refused)."""
    field = re.search(rf'<input id="brand-{name}"[^>]*>', page)
    assert field, f"no field {name}"
    assert 'aria-invalid="true"' in field.group(0)
    assert ("autofocus" in field.group(0)) == focused
    assert f'aria-describedby="{name}-error' in field.group(0)
    message = re.search(rf'<p class="error" id="{name}-error">([^<]*)</p>', page)
    assert message, f"no message under {name}"
    return message.group(1)


def sign_in_page(app, world) -> str:
    return app.test_client().get(f"/t/{world.slug}/login").get_data(as_text=True)


def audited(app, world, action: str) -> list[tuple[str, dict]]:
    """The tenant's audit events ``action``: (actor, data) each."""
    with app.app_context():
        tenant = directory.get_tenant(db.session(), world.slug)
        return [(e.actor, e.data) for e in db.session().scalars(select(AuditEvent).where(
            AuditEvent.tenant_id == tenant.id, AuditEvent.action == action))]


def png_with_metadata() -> bytes:
    """A 1600 × 400 PNG carrying a text chunk (metadata a logo must not keep)."""
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "taken at 51.5N 0.1W by the-secret-camera")
    return image_bytes("PNG", size=(1600, 400), pnginfo=info)


def test_a_png_logo_is_served_from_our_origin_and_shown_on_the_sign_in_page(app, world):
    admin = admin_browser(app, world)
    saved = upload_logo(admin, world, png_with_metadata(), "our-logo.png")
    assert saved.status == 302
    assert "The logo is saved." in branding_page(admin, world).text

    page = sign_in_page(app, world)
    src = LOGO_SRC.search(page).group(1)
    assert f'<img src="{src}" alt="" class="brand-logo"><span>Tenant {world.slug}</span>' in page
    image = app.test_client().get(src)
    assert image.status_code == 200
    assert image.headers["Content-Type"] == "image/png"
    assert image.headers["X-Content-Type-Options"] == "nosniff"
    assert image.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert image.headers["Content-Disposition"] == "inline"
    assert "immutable" in image.headers["Cache-Control"]
    # What is served is pixels we wrote: scaled into 800 × 400, without the upload's metadata.
    served = Image.open(io.BytesIO(image.data))
    assert served.format == "PNG" and served.size == (800, 200)
    assert b"the-secret-camera" not in image.data and "Comment" not in served.info
    # The console shows it too, in its header and on the Branding page.
    assert src in branding_page(admin, world).text
    [(actor, data)] = audited(app, world, "branding.logo_set")
    assert actor == world.admin and data["content_type"] == "image/png"
    # A name no logo has is not found; nor is the old one once the logo changed.
    assert app.test_client().get(src.replace(".png", ".jpg")).status_code == 404
    upload_logo(admin, world, image_bytes("JPEG", colour=(200, 30, 30)), "new.jpg")
    assert app.test_client().get(src).status_code == 404
    new_src = LOGO_SRC.search(sign_in_page(app, world)).group(1)
    assert new_src.endswith(".jpg")
    assert app.test_client().get(new_src).headers["Content-Type"] == "image/jpeg"


def test_an_svg_a_text_file_named_png_a_gif_and_oversized_files_are_refused(app, world):
    admin = admin_browser(app, world)
    svg = b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>'
    cases = [
        (svg, "logo.png", "SVG images are not accepted: they can contain scripts."),
        (b"this is not an image at all\n" * 20, "logo.png",
         "This file is not a PNG, JPEG or WebP image, whatever its name says."),
        (image_bytes("GIF", colour=(10, 20, 30)), "logo.gif", "GIF images are not accepted."),
        (noisy_png((300, 300)), "heavy.png", "a logo can be at most 200 KB."),
        (image_bytes("PNG", size=(5000, 10)), "long.png", "at most 2048 pixels wide and high"),
    ]
    for data, name, expected in cases:
        refused = upload_logo(admin, world, data, name)
        assert refused.status == 400, name
        message = field_error(refused.text, "logo")
        assert expected in message, (name, message)
    # Over even what the upload's request may weigh: refused unread, said on the page.
    huge = upload_logo(admin, world, noisy_png((700, 700)), "huge.png")
    assert huge.status == 302 and "refused=too-large" in huge.location
    assert "larger than 200 KB" in field_error(admin.get(huge.location).text, "logo")
    # Nothing was kept: the pages show no logo, and nothing was audited.
    assert not LOGO_SRC.search(sign_in_page(app, world))
    assert audited(app, world, "branding.logo_set") == []


def test_a_colour_too_light_to_read_is_refused_and_a_readable_one_is_in_the_stylesheet(app, world):
    admin = admin_browser(app, world)
    refused = save_branding(admin, world, accent="#ffff00", display_name="Acme",
                            support_url="http://help.example.com")
    assert refused.status == 400
    message = field_error(refused.text, "accent")
    assert "#ffff00 is too light to read" in message and "1.07 to 1" in message
    assert "at least 4.5 to 1" in message and "#7a7a00 passes" in message
    assert "https://" in field_error(refused.text, "support_url", focused=False)
    assert 'value="Acme"' in refused.text  # what was typed is kept
    assert "Acme" not in sign_in_page(app, world)  # and nothing was saved

    saved = save_branding(admin, world, accent="#1D4ED8", display_name="Acme Corp")
    assert saved.status == 302
    page = sign_in_page(app, world)
    assert '<span>Acme Corp</span>' in page and "<title>" in page
    sheet = app.test_client().get(STYLESHEET.search(page).group(1))
    assert sheet.status_code == 200 and sheet.mimetype == "text/css"
    assert "--accent: #1d4ed8;" in sheet.get_data(as_text=True)
    assert "immutable" in sheet.headers["Cache-Control"]
    # The console uses it too, and no page carries an inline style (the CSP forbids them).
    console = branding_page(admin, world).text
    assert STYLESHEET.search(console).group(1) == STYLESHEET.search(page).group(1)
    assert "Acme Corp · Admin console" in console
    assert "style=" not in page and "<style" not in page and "style=" not in console
    [(actor, data)] = audited(app, world, "branding.changed")
    assert actor == world.admin and data == {"accent": "#1d4ed8", "display_name": "Acme Corp"}


def test_support_contacts_are_on_the_error_and_lock_pages(app, client, world):
    admin = admin_browser(app, world)
    assert save_branding(admin, world, support_url="https://help.example.com/idp?from=lock",
                         support_email="help@example.com").status == 302
    help_link = ('Need help? Contact <a href="https://help.example.com/idp?from=lock" '
                 'rel="noopener noreferrer">https://help.example.com/idp?from=lock</a> or '
                 '<a href="mailto:help@example.com">help@example.com</a>.')
    locked = fail_until_locked(client, world, world.alice).get_data(as_text=True)
    assert "locked until" in locked and help_link in locked.replace("&amp;", "&")
    error = client.get(f"/t/{world.slug}/authorize?client_id=nobody")
    assert error.status_code >= 400
    assert help_link in error.get_data(as_text=True).replace("&amp;", "&")
    # A tenant without support contacts shows no such line.
    save_branding(admin, world, support_url="", support_email="")
    assert "Need help?" not in client.get(f"/t/{world.slug}/authorize?client_id=nobody").get_data(as_text=True)


def test_the_branding_page_is_for_administrators_only(app, world):
    add_user(app, world, "helpdesk@example.com", role="mfa-admin")
    helpdesk = admin_browser(app, world, "helpdesk@example.com")
    assert helpdesk.get(f"/t/{world.slug}/admin/branding").status == 403
    assert "/admin/branding" not in helpdesk.get(f"/t/{world.slug}/admin/users").text
    assert "/admin/branding" in admin_browser(app, world).get(f"/t/{world.slug}/admin/users").text


def test_removing_the_logo(app, world):
    admin = admin_browser(app, world)
    upload_logo(admin, world, image_bytes())
    src = LOGO_SRC.search(sign_in_page(app, world)).group(1)
    page = branding_page(admin, world).text
    assert "Remove the logo?" in page  # asked for confirmation first
    removed = admin.post(f"/t/{world.slug}/admin/branding/logo/remove",
                         {"csrf_token": field(CSRF, page)})
    assert removed.status == 302
    assert not LOGO_SRC.search(sign_in_page(app, world))
    assert app.test_client().get(src).status_code == 404
    assert len(audited(app, world, "branding.logo_removed")) == 1


def test_the_lockout_mail_carries_the_display_name_colour_and_logo(app, settings, world):
    admin = admin_browser(app, world)
    name = f"Acme {world.slug}"  # test tenants share the outbox: this one's mail
    save_branding(admin, world, display_name=name, accent="#0b6e4f",
                  support_email="help@example.com")
    upload_logo(admin, world, image_bytes(colour=(11, 110, 79, 255)))
    served = app.test_client().get(LOGO_SRC.search(sign_in_page(app, world)).group(1)).data
    with smtp_mailbox() as box:
        with mailing_app(settings, box.url) as mailing:
            fail_until_locked(mailing.test_client(), world, world.alice)
            [mail] = box.wait_for(world.alice)
    assert mail.subject.startswith(f"Your {name} account is locked")
    assert mail.sender.startswith(f"{name} <")
    assert "color:#0b6e4f" in mail.html and f">{name}</p>" in mail.html
    # The logo travels inside the message (cid:), byte for byte the one the pages serve.
    cid = re.search(r'<img src="cid:([^"]+)"', mail.html).group(1)
    assert mail.images[cid] == ("image/png", served)
    assert '<a href="mailto:help@example.com"' in mail.html and "Need help? Contact" in mail.html


def test_the_admin_api_reads_and_changes_the_branding_by_the_same_rules(app, client, world):
    api = api_for(app, client, world)
    assert api.get("/branding").get_json() == {"display_name": None, "accent": None,
                                               "support_url": None, "support_email": None,
                                               "logo_url": None}
    refused = api.patch("/branding", json={"accent": "#ffff00", "support_url": "ftp://x.example"})
    assert refused.status_code == 422
    errors = {e["field"]: e["message"] for e in refused.get_json()["errors"]}
    assert "1.07 to 1" in errors["accent"] and "https://" in errors["support_url"]
    changed = api.patch("/branding", json={"display_name": "Acme API", "accent": "#1d4ed8"})
    assert changed.status_code == 200
    assert changed.get_json()["display_name"] == "Acme API"
    assert "<span>Acme API</span>" in sign_in_page(app, world)
    assert api.patch("/branding", json={"display_name": None}).get_json()["display_name"] is None
    actors = {actor for actor, _ in audited(app, world, "branding.changed")}
    assert len(actors) == 1 and world.service.client_id in actors.pop()
    reader = api_for(app, client, world, "admin:read")
    assert reader.patch("/branding", json={"accent": "#000000"}).status_code == 403
