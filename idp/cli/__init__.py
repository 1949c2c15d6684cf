"""The ``idp`` command: ``idp NOUN VERB SLUG ...``, JSON on stdout, one clear line on error.

Each module here is one group of commands and adds its verbs to the parser (``add_commands``);
``main`` runs the one asked for. A command imports what it works with inside its function: the
whole app takes about a second to import, which ``idp --help`` and each command would otherwise
pay for the groups they do not use. ``idp demo`` runs ``idp.demo``, which imports nothing of
the CLI back: what both need is ``idp.installation``.
"""

from __future__ import annotations

import argparse
import json
import sys

from idp.cli import (directory, invitations, outbox, policy, protocol, registration, server,
                     upkeep, upstreams, webhooks)
from idp.cli.common import CLIError
from idp.config import Settings


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="idp", description="OpenID Connect identity provider")
    sub = p.add_subparsers(dest="command", required=True)
    server.add_commands(sub)  # init, serve, demo
    verbs = _nouns(sub, "tenant", "user", "client", "policy", "group", "login-token", "upstream",
                   "webhook", "registration-token", "protocol")
    outbox.add_commands(sub)
    verbs |= _nouns(sub, "keys", "tokens")
    for group in (directory, invitations, policy, protocol, registration, upstreams, upkeep,
                  webhooks):
        group.add_commands(verbs)
    return p


def _nouns(sub, *names: str) -> dict:
    """The ``idp NOUN`` parsers, each waiting for its verbs."""
    return {name: sub.add_parser(name).add_subparsers(dest="verb", required=True)
            for name in names}


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    from idp.directory import DirectoryError
    from idp.store import BadRedisURL

    try:
        settings = Settings.from_env()
    except ValueError as e:  # a malformed IDP_ variable: one line, not a traceback
        print(f"idp: {e}", file=sys.stderr)
        return 2
    try:
        result = args.func(settings, args)
    except (CLIError, DirectoryError, BadRedisURL) as e:
        print(f"idp: {e}", file=sys.stderr)
        return 1
    if result is not None:
        json.dump(result, sys.stdout, indent=2)
        sys.stdout.write("\n")
    return 0
