"""Helpers for branding tests: images made with Pillow, and the console's Branding forms."""

from __future__ import annotations

import io

from PIL import Image

from tests.support.journey import CSRF, Browser, Page, field


def image_bytes(fmt: str = "PNG", size: tuple[int, int] = (240, 80),
                colour: tuple[int, ...] = (29, 78, 216, 255), **save) -> bytes:
    mode = "RGBA" if len(colour) == 4 and fmt != "JPEG" else "RGB"
    out = io.BytesIO()
    Image.new(mode, size, colour[:len(mode)]).save(out, fmt, **save)
    return out.getvalue()


def noisy_png(size: tuple[int, int]) -> bytes:
    """A PNG that compresses badly (random pixels): heavy for its size."""
    import os

    out = io.BytesIO()
    Image.frombytes("RGB", size, os.urandom(size[0] * size[1] * 3)).save(out, "PNG")
    return out.getvalue()


def branding_page(browser: Browser, world) -> Page:
    return browser.get(f"/t/{world.slug}/admin/branding")


def save_branding(browser: Browser, world, **fields: str) -> Page:
    """Submit the Branding page's settings form: ``fields`` over what the page shows."""
    page = branding_page(browser, world).text
    form = {"csrf_token": field(CSRF, page), "display_name": "", "accent": "", "support_url": "",
            "support_email": ""}
    form.update(fields)
    return browser.post(f"/t/{world.slug}/admin/branding", form)


def upload_logo(browser: Browser, world, data: bytes, filename: str = "logo.png") -> Page:
    """Upload ``data`` as the logo from the console's Branding page (in-process browsers)."""
    page = branding_page(browser, world).text
    r = browser.http.post(f"/t/{world.slug}/admin/branding/logo",
                          data={"csrf_token": field(CSRF, page),
                                "logo": (io.BytesIO(data), filename)},
                          content_type="multipart/form-data")
    return Page(r.status_code, r.headers.get("Location"), r.get_data(as_text=True), dict(r.headers))


def sample_logo(colour: tuple[int, int, int] = (11, 110, 79)) -> bytes:
    """A wide logo on a transparent background: a rounded mark and a word, as logos are."""
    from PIL import ImageDraw, ImageFont

    image = Image.new("RGBA", (480, 120), (0, 0, 0, 0))
    draw = ImageDraw.Draw(image)
    draw.rounded_rectangle((8, 10, 108, 110), radius=24, fill=colour + (255,))
    draw.ellipse((36, 38, 80, 82), fill=(255, 255, 255, 255))
    draw.text((128, 24), "Northwind", fill=colour + (255,), font=ImageFont.load_default(size=64))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()
