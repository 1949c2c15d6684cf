"""``idp init``, ``idp serve`` and ``idp demo``: an installation brought up to date, and run."""

from __future__ import annotations

import logging
import sys

from idp.config import Settings


def init(settings: Settings, args) -> dict:
    from idp import installation

    upgrade = installation.init(settings)
    return {"database": "migrated to head", "keys_dir": str(settings.keys_dir),
            "tenants_given_shared_keys": upgrade.given_shared_keys,
            "shared_keys_retired": upgrade.shared_keys_retired}


def serve(settings: Settings, args) -> None:
    from idp import create_app, installation

    installation.init(settings)
    app = create_app(settings)
    if settings.access_log:
        # Ours is the access log; werkzeug's would add a line per request, query string and all.
        logging.getLogger("werkzeug").setLevel(logging.WARNING)
    print(f"idp serving {settings.base_url} (listening on {args.host}:{args.port})",
          file=sys.stderr, flush=True)
    app.run(host=args.host, port=args.port, threaded=True, use_reloader=False)


def demo(settings: Settings, args) -> None:
    from idp.demo import run_demo

    run_demo(settings, host=args.host, port=args.port, portal_port=args.portal_port)


def add_commands(sub) -> None:
    sub.add_parser("init", help="migrate the database to head; hand shared signing keys "
                                       "of earlier versions to every tenant"
                   ).set_defaults(func=init)
    for name, func in (("serve", serve), ("demo", demo)):
        sp = sub.add_parser(name, help=f"{name} on the embedded defaults")
        sp.add_argument("--host", default="127.0.0.1")
        sp.add_argument("--port", type=int, default=5000)
        if name == "demo":
            sp.add_argument("--portal-port", type=int, default=5001)
        sp.set_defaults(func=func)
