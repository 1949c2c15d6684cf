"""axe-core on a page in Chromium (axe-playwright-python, which bundles axe.min.js: nothing is
fetched), and its serious and critical violations in words a developer can act on."""

from __future__ import annotations

from axe_playwright_python.sync_playwright import Axe
from playwright.sync_api import Page

BLOCKING = {"serious", "critical"}
_AXE = Axe()


def violations(page: Page, name: str, rules: list[str] | None = None) -> list[str]:
    """axe's serious and critical violations on ``page`` (all its rules, or only ``rules``), one
    paragraph each: the page, the rule id, its impact, what it asks (help and its URL) and the
    selectors of the nodes concerned.

    axe runs from the copy bundled with the package: a request the page makes while it runs
    is a failure too (it would mean the check needs the network).
    """
    requested: list[str] = []
    listener = lambda request: requested.append(request.url)  # noqa: E731
    page.on("request", listener)
    try:
        options = {"resultTypes": ["violations"]}
        if rules:
            options["runOnly"] = {"type": "rule", "values": rules}
        if not page.evaluate("typeof window.axe === 'object'"):  # once per page loaded
            page.evaluate(_AXE.axe_script)
        results = page.evaluate("options => axe.run(document, options)", options)
    finally:
        page.remove_listener("request", listener)
    assert not requested, f"axe fetched {requested} on {name}: it must run offline"
    found = []
    for violation in results["violations"]:
        if violation.get("impact") not in BLOCKING:
            continue
        nodes = "\n".join(
            f"    {' > '.join(map(str, node['target']))}: "
            + " ".join(line.strip() for line in (node.get("failureSummary") or "").splitlines())
            for node in violation["nodes"])
        found.append(f"{name} ({page.url}): {violation['id']} [{violation['impact']}] "
                     f"{violation['help']} ({violation['helpUrl']})\n{nodes}")
    return found
