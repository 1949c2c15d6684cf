"""``idp outbox``: the mail and SMS the outbox holds, newest first, for people or as JSON:
mail is ``pending`` until the sender hands it over (``sent``), ``kept`` without SMTP (the
embedded default), ``failed`` or ``expired`` when given up; SMS of the embedded default is
``kept``."""

from __future__ import annotations

from datetime import timezone

from idp.cli.common import CLIError, positive
from idp.config import Settings


def outbox(settings: Settings, args) -> list | None:
    """What the outbox backends hold (mail and SMS of the embedded defaults), newest first."""
    from sqlalchemy import func, select

    from idp.addresses import normalise_email
    from idp.directory import DirectoryError, normalise_phone
    from idp.installation import database
    from idp.models import OutboxMessage

    query = select(OutboxMessage).order_by(OutboxMessage.created_at.desc(), OutboxMessage.id.desc())
    if args.channel:
        query = query.where(OutboxMessage.channel == args.channel)
    if args.to:
        wanted = normalise_email(args.to)  # an address in its one spelling, as users have it
        if wanted.startswith("+"):  # a number as people write it: "+33 6 12 34 56 78"
            try:
                wanted = normalise_phone(wanted)
            except DirectoryError:
                pass
        query = query.where(func.lower(OutboxMessage.recipient) == wanted)
    with database(settings) as session:
        rows = session.scalars(query.limit(args.limit)).all()
        found = [{"recipient": m.recipient, "channel": m.channel, "subject": m.subject,
                  "text": m.body,
                  "time": m.created_at.astimezone(timezone.utc).isoformat(timespec="seconds"),
                  "state": m.state}
                 for m in rows]
    if args.json:
        return found
    if not found:
        print("The outbox is empty." if not (args.channel or args.to) else "No message matches.")
        return None
    columns = ("time", "channel", "state", "recipient", "subject")
    widths = {c: max(len(c), *(len(m[c] or "") for m in found)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns) + "  TEXT")
    for m in found:
        text = " ".join(m["text"].split())  # one line per message: mail bodies have several
        print("  ".join((m[c] or "-").ljust(widths[c]) for c in columns) + f"  {text}")
    return None


def mail_send(settings: Settings, args) -> dict | None:
    """Deliver the outbox's due mail (``idp.notify.outbox``): once, or ``--watch`` forever."""
    import time

    from idp import db, notify, store
    from idp.notify import outbox as mail_outbox
    from idp.mfa.secrets import SecretBox
    from idp.oidc.keys import Keyrings

    if not settings.smtp_url:
        raise CLIError("IDP_SMTP_URL is not set: mail stays in the outbox (idp outbox lists it)")
    try:
        transport = notify.smtp_transport(settings)
    except notify.SendError as e:
        raise CLIError(str(e)) from None
    # Back-channel logout notices leave with the mail: signed with each tenant's keys.
    keyring = Keyrings.from_settings(settings)
    box = SecretBox(settings.secret_key)  # and webhooks, signed with their endpoints' secrets
    shared = store.connect(settings) if settings.redis_url else None  # idp.cache's bumps
    engine = db.make_engine(settings.database_url)
    try:
        if not args.watch:
            return mail_outbox.deliver(engine, settings, transport=transport,
                                       keyring=keyring, box=box, store=shared).as_dict()
        while True:  # a service of its own (systemd), when the workers' senders are off
            mail_outbox.deliver(engine, settings, transport=transport, keyring=keyring, box=box,
                                store=shared)
            time.sleep(args.interval)
    finally:
        engine.dispose()


def add_commands(sub) -> None:
    sp = sub.add_parser("outbox", help="list the mail and SMS the outbox holds, newest first")
    sp.add_argument("--json", action="store_true", help="a JSON list on stdout")
    sp.add_argument("--channel", choices=["mail", "sms", "logout", "webhook"])
    sp.add_argument("--to", help="only messages to this address or number")
    sp.add_argument("--limit", type=positive, default=20)
    sp.set_defaults(func=outbox)
    mail = sub.add_parser("mail").add_subparsers(dest="verb", required=True)
    sp = mail.add_parser("send", help="hand the outbox's due mail to the SMTP server, with "
                                      "retries (prints what happened as JSON)")
    sp.add_argument("--watch", action="store_true", help="keep sending, every --interval seconds")
    sp.add_argument("--interval", type=positive, default=5)
    sp.set_defaults(func=mail_send)
