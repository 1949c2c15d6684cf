"""Screenshots of a page at desktop and phone width, for a person to look at."""

from __future__ import annotations

from pathlib import Path

WIDTHS = (1280, 360)


def shoot(page, folder: str | Path, name: str, height: int = 900) -> None:
    """``folder/name-1280.png`` and ``folder/name-360.png``, full page; the page is left at
    desktop width."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": height})
        page.screenshot(path=str(folder / f"{name}-{width}.png"), full_page=True)
    page.set_viewport_size({"width": 1280, "height": height})
