"""``idp outbox``: the mail and SMS the outbox backends hold (the embedded defaults send
nothing), newest first, for people or as JSON."""

from __future__ import annotations

from datetime import timezone

from idp.cli.common import positive
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
                  "time": m.created_at.astimezone(timezone.utc).isoformat(timespec="seconds")}
                 for m in rows]
    if args.json:
        return found
    if not found:
        print("The outbox is empty." if not (args.channel or args.to) else "No message matches.")
        return None
    columns = ("time", "channel", "recipient", "subject")
    widths = {c: max(len(c), *(len(m[c] or "") for m in found)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns) + "  TEXT")
    for m in found:
        text = " ".join(m["text"].split())  # one line per message: mail bodies have several
        print("  ".join((m[c] or "-").ljust(widths[c]) for c in columns) + f"  {text}")
    return None


def add_commands(sub) -> None:
    sp = sub.add_parser("outbox", help="list the mail and SMS the outbox holds, newest first")
    sp.add_argument("--json", action="store_true", help="a JSON list on stdout")
    sp.add_argument("--channel", choices=["mail", "sms"])
    sp.add_argument("--to", help="only messages to this address or number")
    sp.add_argument("--limit", type=positive, default=20)
    sp.set_defaults(func=outbox)
