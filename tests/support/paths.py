"""The repository's root: the servers, the CLI and the demo the tests start run from it."""

from __future__ import annotations

from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
