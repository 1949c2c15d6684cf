"""The branding's checks alone: the colour's contrast (WCAG 2.2 SC 1.4.3) and what becomes of
an uploaded logo."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from idp.admin.branding import (check_accent, check_support_email, check_support_url,
                                contrast_with_white, darker_that_passes, prepare_logo)
from tests.support.branding import image_bytes


@pytest.mark.parametrize("colour, ratio", [("#000000", 21.0), ("#ffffff", 1.0),
                                           ("#767676", 4.54), ("#777777", 4.48),
                                           ("#ffff00", 1.07), ("#1d4ed8", 6.70)])
def test_contrast_with_white_as_wcag_computes_it(colour, ratio):
    assert round(contrast_with_white(colour), 2) == ratio


def test_a_colour_passes_only_at_4_5_to_1_and_a_refusal_offers_a_shade_that_passes():
    assert check_accent("#767676") == "#767676"
    assert check_accent("1D4ED8") == "#1d4ed8"
    assert check_accent("") is None
    with pytest.raises(ValueError, match="4.47 to 1"):
        check_accent("#777777")  # 4.4787...: shown cut, never rounded up towards a pass
    shade = darker_that_passes("#ffff00")
    assert contrast_with_white(shade) >= 4.5 and shade[1:3] == shade[3:5] and shade[5:] == "00"
    for typed in ("red", "#12345", "#12345g", "#1234567"):
        with pytest.raises(ValueError, match="six hexadecimal digits"):
            check_accent(typed)


def test_support_contacts():
    assert check_support_url(" https://help.example.com/a?b=c ") == "https://help.example.com/a?b=c"
    for bad in ("http://help.example.com", "javascript:alert(1)", "https://", "https://u:p@x.example",
                "https://x.example/ a", "https://x.example:port/"):
        with pytest.raises(ValueError):
            check_support_url(bad)
    assert check_support_email("help@example.com") == "help@example.com"
    for bad in ("help", "a@b", "<a@b.example>", "a b@c.example", "a@b.example\r\nBcc: x@y.example",
                "help@example.com?bcc=x@y.example", "a&b@example.com"):
        with pytest.raises(ValueError):
            check_support_email(bad)


def test_a_logo_is_encoded_again_turned_upright_and_scaled_into_its_box():
    photo = Image.new("RGB", (1200, 600), (200, 40, 40))
    exif = photo.getexif()
    exif[0x0112] = 6  # orientation: rotate 90° to show
    exif[0x010F] = "the-secret-camera"  # make
    out = io.BytesIO()
    photo.save(out, "JPEG", exif=exif.tobytes())
    logo = prepare_logo(out.getvalue())
    kept = Image.open(io.BytesIO(logo.data))
    assert logo.content_type == "image/jpeg" and kept.size == (200, 400) == (logo.width, logo.height)
    assert b"the-secret-camera" not in logo.data and not kept.getexif()


def test_a_polyglot_keeps_only_its_pixels():
    tail = b"<script>alert(document.domain)</script>"
    logo = prepare_logo(image_bytes("PNG") + tail)
    assert tail not in logo.data and logo.content_type == "image/png"
    assert Image.open(io.BytesIO(logo.data)).mode == "RGBA"  # transparency kept


@pytest.mark.parametrize("data, says", [
    (b'\xef\xbb\xbf  <svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>', "SVG"),
    (b"GIF89a" + b"\x00" * 40, "not a PNG, JPEG or WebP image"),
    (image_bytes("BMP", colour=(1, 2, 3)), "not a PNG, JPEG or WebP image"),
    (image_bytes("PNG")[:60], "not a PNG, JPEG or WebP image"),  # cut short
    (b"", "empty"),
])
def test_what_is_not_a_logo_is_refused_with_a_reason(data, says):
    with pytest.raises(ValueError, match=says):
        prepare_logo(data)


@pytest.mark.parametrize("name", ["Northwind\u202eredarT", "North\u200bwind", "Northwind\x07"])
def test_a_display_name_that_reads_otherwise_than_it_is_is_refused(name):
    """A right-to-left override or a zero-width space would make a page title or a mail's
    sender read otherwise than it is."""
    from idp.admin.branding import check_display_name

    with pytest.raises(ValueError, match="control characters"):
        check_display_name(name)
    assert check_display_name("Northwind  Traders (Lisboa)") == "Northwind Traders (Lisboa)"
