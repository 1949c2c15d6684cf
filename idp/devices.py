"""What a browser's User-Agent says it is, in words for the person who owns it: "Firefox 133"
on "Windows 10", for the account page's lists of signed-in and remembered browsers.

The rules are uap-core's, shipped inside the ``ua-parser`` package (``ua-parser-builtins``):
nothing is fetched. The header is whatever the browser (or anyone) sent, kept at most
``session.USER_AGENT_KEPT`` characters; what the rules cannot name is "Unknown browser",
never the raw header.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from flask_babel import gettext as _
from ua_parser import parse_os, parse_user_agent

UNKNOWN_BROWSER = "Unknown browser"
UNKNOWN_SYSTEM = "unknown system"


@dataclass(frozen=True)
class Device:
    browser: str  # "Chrome 131", or UNKNOWN_BROWSER
    system: str  # "Windows 10", "iOS 17", or UNKNOWN_SYSTEM

    def __str__(self) -> str:  # as stored (a remembered browser's description): English
        return f"{self.browser} on {self.system}"

    @classmethod
    def stored(cls, description: str) -> Device | None:
        """A description as ``str()`` stored it ("Chrome 131 on Windows 10"), or None."""
        browser, on, system = (description or "").rpartition(" on ")
        return cls(browser, system) if on and browser and system else None

    def shown(self) -> str:
        """As its owner reads it, in the page's language."""
        browser = _("Unknown browser") if self.browser == UNKNOWN_BROWSER else self.browser
        system = _("unknown system") if self.system == UNKNOWN_SYSTEM else self.system
        return _("%(browser)s on %(system)s", browser=browser, system=system)


def _named(family: str | None, major: str | None, minor: str | None = None) -> str | None:
    if not family or family == "Other":
        return None
    if major and minor and family == "Mac OS X":  # every release of a decade is "10"
        return f"{family} {major}.{minor}"
    return f"{family} {major}" if major else family


@functools.lru_cache(maxsize=1024)
def describe(user_agent: str) -> Device:
    """The browser and system ``user_agent`` names (cached: a user's few browsers are asked
    for on every visit to the page)."""
    agent = parse_user_agent(user_agent) if user_agent else None
    system = parse_os(user_agent) if user_agent else None
    return Device(_named(agent and agent.family, agent and agent.major) or UNKNOWN_BROWSER,
                  _named(system and system.family, system and system.major,
                         system and system.minor) or UNKNOWN_SYSTEM)


def in_words(description: str | None) -> str:
    """A stored browser description as the page's reader says it; what it cannot read, as
    stored (and "" stays "")."""
    device = Device.stored(description or "")
    return device.shown() if device else (description or "")
