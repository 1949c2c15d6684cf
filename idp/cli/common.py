"""What every group of ``idp`` commands shares: the one-line error and the argument types."""

from __future__ import annotations

import argparse


class CLIError(Exception):
    """Printed as one line on stderr; the command exits 1."""


def csv(value: str | None) -> list[str] | None:
    """``a,b,c`` as a list; None when the option was not given (the stored value stays)."""
    if value is None:
        return None
    return [item.strip() for item in value.split(",") if item.strip()]


def on_off(value: str | None) -> bool | None:
    """``on``/``off`` as a boolean; None when the option was not given."""
    return None if value is None else value == "on"


def positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError("must be 1 or more")
    return number
