"""An administrator gives a live portal an id of its own for each person (pairwise subjects)
on its console page, in Chromium: asked to confirm first, since the portal will know
everyone by new ids."""

from __future__ import annotations

import re

from playwright.sync_api import Page, expect

from tests.support import screens
from tests.support.browser_console import to_console


def test_an_admin_makes_a_live_portal_pairwise_after_confirming(page: Page, live_world):
    world = live_world
    path = f"/admin/portals/{world.portal.client_id}"
    to_console(page, world.issuer, path, world.admin, world.password)

    expect(page.get_by_label(re.compile("^The same id everywhere"))).to_be_checked()
    page.get_by_label(re.compile(r"^An id of its own \(pairwise\)")).check()
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_role("alert")).to_contain_text("tick the box to confirm")
    # Under the box to tick, not above the form: the admin sees what to do where to do it.
    expect(page.locator(".choice:has(#subject-confirm) + .error")).to_contain_text("tick the box")
    confirm = page.get_by_label(re.compile("gives every person a new id at this portal"))
    expect(confirm).to_have_accessible_description(re.compile("tick the box to confirm"))
    screens.keep(page, "portal-pairwise-confirm")

    page.get_by_label(re.compile(r"^An id of its own \(pairwise\)")).check()
    page.get_by_label(re.compile("gives every person a new id at this portal")).check()
    page.get_by_role("button", name=re.compile("^Save")).click()
    expect(page.get_by_text("is saved")).to_be_visible()
    expect(page.get_by_label(re.compile(r"^An id of its own \(pairwise\)"))).to_be_checked()
    screens.keep(page, "portal-pairwise")
