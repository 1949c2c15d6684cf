"""A pushed authorization request walked in Chromium: the portal pushes it (Authlib's client),
the person follows the short link and signs in on the usual page; the same link followed
again says, in words, that it has expired."""

from __future__ import annotations

import re

import pytest
from authlib.common.urls import add_params_to_uri
from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.browser_console import to_console
from tests.support.journey import query
from tests.support.par import authorization_params, oauth, push
from tests.support.relying_party import discovery


@pytest.fixture(autouse=True)
def plain_http_is_fine(monkeypatch):
    monkeypatch.setenv("AUTHLIB_INSECURE_TRANSPORT", "1")


def _problems(page: Page, name: str) -> list[str]:
    return [f"{width}: {problem}" for width, problems in screens.look_at(page, name).items()
            for problem in problems]


def test_a_pushed_sign_in_looks_like_any_other(page: Page, live_world):
    world, creds = live_world, live_world.portal
    provider = discovery(world.issuer)
    params, _ = authorization_params(creds)
    request_uri = push(oauth(creds, provider), provider, params).json()["request_uri"]
    link = add_params_to_uri(provider["authorization_endpoint"],
                             [("client_id", creds.client_id), ("request_uri", request_uri)])
    page.route("https://portal.test/**", lambda route: route.fulfill(body="portal", status=200))

    page.goto(link)
    expect(page.locator("#email")).to_be_visible()
    assert not _problems(page, "par-login")
    page.locator("#email").fill(world.alice)
    page.locator("#password").fill(world.password)
    with page.expect_request(lambda r: r.url.startswith(creds.redirect_uri)) as back:
        page.get_by_role("button", name="Sign in", exact=True).click()
    answer = query(back.value.url)
    assert answer["state"] == params["state"] and answer["code"]
    # Back at the portal before the next visit (a visit started meanwhile is cut short).
    page.wait_for_url(creds.redirect_uri + "**")

    page.goto(link)  # the same link again: used
    expect(page.get_by_role("heading", name="This sign-in link has expired")).to_be_visible()
    expect(page.get_by_text("Go back to the application and try again.")).to_be_visible()
    assert not _problems(page, "par-expired")


def test_an_admin_requires_par_of_a_portal(page: Page, live_world):
    world = live_world
    to_console(page, world.issuer, f"/admin/portals/{world.portal.client_id}", world.admin,
               world.password)  # the console asks for a second step first

    page.get_by_label(re.compile("before sending the person")).check()
    page.get_by_label("Signature algorithm of its sign-in requests").select_option("ES256")
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_text("is saved")).to_be_visible()
    expect(page.get_by_label(re.compile("before sending the person"))).to_be_checked()
    expect(page.get_by_label(re.compile("with its own key"))).not_to_be_checked()
    assert not _problems(page, "portal-request-rules")
