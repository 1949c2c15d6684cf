"""Helpers for the tenant's protocol settings: the console's Portal security form."""

from __future__ import annotations

from tests.support.journey import CSRF, Browser, Page, field


def protocol_page(browser: Browser, world) -> Page:
    return browser.get(f"/t/{world.slug}/admin/portal-security")


def save_protocol(browser: Browser, world, *, require_par: bool = False,
                  dpop_nonce_required: bool = False, hosts: str = "") -> Page:
    """Submit the Portal security form as an admin fills it in (unticked boxes are not sent)."""
    page = protocol_page(browser, world).text
    form = {"csrf_token": field(CSRF, page), "registration_redirect_hosts": hosts}
    if require_par:
        form["require_par"] = "on"
    if dpop_nonce_required:
        form["dpop_nonce_required"] = "on"
    return browser.post(f"/t/{world.slug}/admin/portal-security", form)
