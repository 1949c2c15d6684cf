"""Screenshots of every page of ours a browser test visits, at desktop and phone width, and
the layout checks (``tests.support.layout.problems``) on each, without disturbing the test.

While the test runs, each 'load' of a page's main frame keeps the page's address and its DOM
as shown (the error a form showed, what a script changed, what was typed or ticked), and the
rules of its stylesheets. ``keep(page, name)`` keeps the DOM at a moment of the test's
choosing too (a dialog open, a message a script showed). After the test, each kept page is
drawn again in a browser context of its own — its scripts left out, a ``<base href>`` so its
links resolve, the stylesheets answered from what was kept (the servers need not be up) — at
1280 and 360 px wide: a full-page screenshot ``<folder>/<test>/<nn>-<page>-<width>.png`` and
the layout's problems at that width.

Only our pages are kept: those that link our stylesheet (``static/idp.css``); the demo
portal and the upstream providers are someone else's.
"""

from __future__ import annotations

import html as markup
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.layout import HEIGHT, WIDTHS, problems
from tests.support.paths import ROOT

FOLDER = Path(os.environ.get("IDP_TEST_SCREENS") or ROOT / "test-output" / "screens")
KEEP_HTML = os.environ.get("IDP_TEST_SCREENS_HTML") == "1"  # <nn>-<page>.html beside the PNGs
OURS = re.compile(r"""<link[^>]+href="[^"]*/static/idp\.css""")
SCRIPT = re.compile(r"<script\b.*?</script\s*>", re.IGNORECASE | re.DOTALL)
HEAD = re.compile(r"<head\b[^>]*>", re.IGNORECASE)
# The page as shown, in one go (its address and DOM of one moment), with the rules of each of
# its stylesheets not kept yet: a page loaded again gets them from the cache, and no response
# says so.
_CAPTURE = """(known) => {
  const type = document.doctype;
  const sheets = {};
  for (const sheet of document.styleSheets) {
    try { if (sheet.href && !known.includes(sheet.href)) sheets[sheet.href] = Array.from(sheet.cssRules, (rule) => rule.cssText).join("\\n"); }
    catch (e) { /* another origin's: not ours */ }
  }
  // What was typed, ticked or chosen is no attribute: written into a copy, the page untouched.
  const copy = document.documentElement.cloneNode(true);
  const fields = copy.querySelectorAll("input, select, textarea");
  document.querySelectorAll("input, select, textarea").forEach((field, i) => {
    const into = fields[i];
    if (field.type === "checkbox" || field.type === "radio") into.toggleAttribute("checked", field.checked);
    else if (field.tagName === "SELECT") Array.from(field.options).forEach((o, j) => into.options[j].toggleAttribute("selected", o.selected));
    else if (field.tagName === "TEXTAREA") into.textContent = field.value;
    else if (field.type !== "file") into.setAttribute("value", field.value);
  });
  return {url: location.href, html: (type ? `<!DOCTYPE ${type.name}>` : "") + copy.outerHTML, sheets};
}"""

_recorders: dict[object, "Recorder"] = {}  # a watched browser context -> its test's recorder


@dataclass
class Snapshot:
    number: int
    name: str
    url: str
    html: str
    found: dict[str, list[str]] | None = None  # the layout's problems per device, once drawn

    @property
    def stem(self) -> str:
        return f"{self.number:02d}-{self.name}"


@dataclass
class Recorder:
    """One test's pages: what it kept, and where their screenshots go."""

    folder: Path
    browser: object  # the session's Chromium, which draws the pages in a context of its own
    snapshots: list[Snapshot] = field(default_factory=list)
    stylesheets: dict[str, str] = field(default_factory=dict)  # url -> its rules, as loaded
    _pages: set = field(default_factory=set)
    _contexts: list = field(default_factory=list)
    _drawing: object = None  # the page that draws, once there is something to draw

    # --- while the test runs ---------------------------------------------------------------

    def watch(self, context) -> None:
        """Keep every page of ours that the context's pages load from now on."""
        if context in self._contexts:
            return
        self._contexts.append(context)
        _recorders[context] = self
        context.on("page", self._attach)
        for page in context.pages:
            self._attach(page)

    def _attach(self, page) -> None:
        if id(page) in self._pages:
            return
        self._pages.add(id(page))
        page.on("load", lambda: self.keep(page))

    def keep(self, page, name: str | None = None) -> Snapshot | None:
        """The page's DOM as shown now, if it is one of ours (never fails the test)."""
        try:
            shown = page.evaluate(_CAPTURE, list(self.stylesheets))
        except Exception:  # navigated or closed meanwhile: the next load is kept instead
            return None
        url, html = shown["url"], shown["html"]
        if not OURS.search(html):
            return None
        for href, text in shown["sheets"].items():
            self.stylesheets.setdefault(href, text)
        for shot in self.snapshots:
            if (shot.url, shot.html) == (url, html):  # kept already (at its load)
                if name and shot.found is None:
                    shot.name = name  # named as the test asks
                return shot
        shot = Snapshot(len(self.snapshots) + 1, name or _page_name(url), url, html)
        self.snapshots.append(shot)
        return shot

    # --- drawing ---------------------------------------------------------------------------

    def look(self, page, name: str) -> dict[str, list[str]]:
        """Keep the page as shown now and draw it at once, with what its <details> hide
        opened; the layout's problems at each width (``{"desktop": [...], "phone": [...]}``)."""
        page.wait_for_load_state("load")  # its stylesheets in
        shot = self.keep(page, name)
        if shot is None:
            raise AssertionError(f"{page.url} is not a page of ours (it links no idp.css)")
        if shot.found is None:
            shot.found = self._draw(shot, open_details=True)
        return shot.found

    def finish(self) -> list[str]:
        """Draw every kept page not drawn yet, at each width; return the layout's problems,
        one line each ("03-admin-users at 360 (url): the page is 420px wide in a 360px
        window"), also written to ``problems.txt`` beside the screenshots."""
        for context in self._contexts:
            _recorders.pop(context, None)
        try:
            for shot in self.snapshots:
                if shot.found is None:
                    shot.found = self._draw(shot)
        finally:
            if self._drawing is not None:
                self._drawing.context.close()
                self._drawing = None
        wrong = [f"{shot.stem} at {WIDTHS[device]} ({shot.url}): {problem}"
                 for shot in self.snapshots for device, found in shot.found.items() for problem in found]
        if wrong:
            (self.folder / "problems.txt").write_text("\n".join(wrong) + "\n")
        return wrong

    def _draw(self, shot: Snapshot, open_details: bool = False) -> dict[str, list[str]]:
        """``<nn>-<name>-<width>.png`` at each width, in a page of our own (never the test's)."""
        if self._drawing is None:
            shutil.rmtree(self.folder, ignore_errors=True)  # a previous run's pictures
            self.folder.mkdir(parents=True, exist_ok=True)
            context = self.browser.new_context(
                viewport={"width": WIDTHS["desktop"], "height": HEIGHT["desktop"]})
            context.route("**/*", self._answer)
            self._drawing = context.new_page()
        page = self._drawing
        if KEEP_HTML:  # to draw again with other stylesheets, while changing them
            (self.folder / f"{shot.stem}.html").write_text(_standalone(shot))
        page.set_content(_standalone(shot), wait_until="load")
        if open_details:
            page.evaluate("document.querySelectorAll('details').forEach((d) => { d.open = true; })")
        found = {}
        for device, width in WIDTHS.items():
            page.set_viewport_size({"width": width, "height": HEIGHT[device]})
            page.screenshot(path=str(self.folder / f"{shot.stem}-{width}.png"), full_page=True)
            found[device] = problems(page)
        return found

    def _answer(self, route) -> None:
        """The stylesheets as the test's pages had them (the servers may be gone by now); an
        image or a font from its server, if it still answers; nothing else."""
        request = route.request
        if request.url in self.stylesheets:
            route.fulfill(status=200, content_type="text/css", body=self.stylesheets[request.url])
        elif request.resource_type in ("image", "font"):
            route.continue_()
        else:
            route.abort()


def look_at(page, name: str) -> dict[str, list[str]]:
    """The page as shown now, drawn at 1280 and 360 px with its <details> open (screenshots
    beside the test's others) without touching the test's page; what is wrong at each width."""
    recorder = _recorders.get(page.context)
    if recorder is None:
        raise AssertionError("a page of a context that the browser tests' fixtures did not open")
    return recorder.look(page, name)


def keep(page, name: str) -> None:
    """Keep the page as it is shown now under ``name`` (a dialog open, a script's message),
    for its screenshots and layout checks after the test."""
    recorder = _recorders.get(page.context)
    if recorder is not None:
        recorder.keep(page, name)


def folder_for(nodeid: str) -> Path:
    """``tests/browser/test_console.py::test_x[a]`` -> ``<FOLDER>/test_console.test_x-a``."""
    path, _, name = nodeid.partition("::")
    return FOLDER / re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{Path(path).stem}.{name}").strip("-")


def _page_name(url: str) -> str:
    """``http://h/t/demo/admin/users/12?x=1`` -> ``admin-users-12``."""
    path = re.sub(r"^/t/[^/]+", "", urlsplit(url).path)
    return re.sub(r"[^a-z0-9]+", "-", path.lower()).strip("-")[:60] or "home"


def _standalone(shot: Snapshot) -> str:
    """The page without its scripts, its links resolving against its own address."""
    html = SCRIPT.sub("", shot.html)
    base = f'<base href="{markup.escape(shot.url)}">'
    match = HEAD.search(html)
    return html[:match.end()] + base + html[match.end():] if match else base + html
