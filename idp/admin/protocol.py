"""A tenant's protocol settings as admins set them (the console's Portal security page, the
admin API's ``/protocol``, ``idp protocol set``): whether every portal must push its
authorization requests (PAR, RFC 9126 6), whether DPoP proofs must carry a nonce of ours
(RFC 9449 8), and the hosts self-registered portals may send people to (RFC 7591 5). Every
check is here, each refusal says what to change, and each change is audited with the admin.
What the settings do is ``idp.oidc``'s; what requests read is ``idp.protocol``'s snapshot.

A redirect host is a host name (``portal.example.com``) or every host under one
(``*.example.com``): no scheme, port or path, since the rule is about where people land, not
how. Stored lower-case and as ASCII (an internationalised name in its ``xn--`` form, as a URL
carries it). ``*.`` needs at least two labels after it: ``*.com`` would be the whole top-level
domain.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from flask_babel import gettext as _
from sqlalchemy.orm import Session

from idp import audit
from idp import protocol as snapshot
from idp.models import TenantProtocol
from idp.models.base import utcnow

MAX_REDIRECT_HOSTS = 50
MAX_HOST = 253  # RFC 1035 2.3.4, in its ASCII form
LABEL = r"(?!-)[a-z0-9-]{1,63}(?<!-)"
# The last label is not all digits: that is an IP address, which is not a host name.
HOST = re.compile(rf"(?:{LABEL}\.)*(?!\d+$){LABEL}")
FIELDS = ("require_par", "dpop_nonce_required", "registration_redirect_hosts")


@dataclass
class ProtocolRefused(Exception):
    """What was refused, by field: one message for a person each."""

    errors: dict[str, str] = field(default_factory=dict)

    def __str__(self) -> str:
        return " ".join(self.errors.values())


def check_host(typed: str) -> str:
    """One host pattern as stored; ValueError with a message for the admin otherwise."""
    value = (typed or "").strip().lower().rstrip(".")
    shown = repr(typed.strip()[:80])
    if "://" in value or "/" in value or ":" in value or "@" in value or "?" in value:
        raise ValueError(_("%(host)s is not a host name: give the host alone, such as "
                           "portal.example.com, without https://, a port or a path.", host=shown))
    wildcard = value.startswith("*.")
    name = value[2:] if wildcard else value
    try:
        ascii_name = name.encode("idna").decode("ascii") if name else ""
    except UnicodeError:
        ascii_name = ""
    if not ascii_name or len(ascii_name) > MAX_HOST or not HOST.fullmatch(ascii_name):
        raise ValueError(_("%(host)s is not a host name such as portal.example.com or "
                           "*.example.com.", host=shown))
    if wildcard and "." not in ascii_name:
        raise ValueError(_("%(host)s covers a whole top-level domain: name the domain, such "
                           "as *.example.com.", host=shown))
    return ("*." if wildcard else "") + ascii_name


def check_hosts(typed: list[str]) -> list[str]:
    """The host patterns as stored: each checked, once, in the order given (empty items
    dropped); ValueError naming the first refused one."""
    hosts: list[str] = []
    for item in typed:
        if not (item or "").strip():
            continue
        host = check_host(item)
        if host not in hosts:
            hosts.append(host)
    if len(hosts) > MAX_REDIRECT_HOSTS:
        raise ValueError(_("List at most %(num)d hosts.", num=MAX_REDIRECT_HOSTS))
    return hosts


def settings(db: Session, tenant_id: int) -> snapshot.Protocol:
    """The tenant's settings as they are stored now (not the worker's cached copy)."""
    return snapshot.load(db, tenant_id)


def as_dict(protocol: snapshot.Protocol) -> dict:
    return {"require_par": protocol.require_par,
            "dpop_nonce_required": protocol.dpop_nonce_required,
            "registration_redirect_hosts": list(protocol.registration_redirect_hosts)}


def update(db: Session, tenant_id: int, actor: str, *, require_par: bool | None = None,
           dpop_nonce_required: bool | None = None,
           registration_redirect_hosts: list[str] | None = None) -> snapshot.Protocol:
    """Change what is given (None: stays as it is); all is checked before anything changes,
    ``ProtocolRefused`` names each field refused. One audit event lists what changed."""
    checked: dict = {}
    errors: dict[str, str] = {}
    if require_par is not None:
        checked["require_par"] = bool(require_par)
    if dpop_nonce_required is not None:
        checked["dpop_nonce_required"] = bool(dpop_nonce_required)
    if registration_redirect_hosts is not None:
        try:
            checked["registration_redirect_hosts"] = check_hosts(registration_redirect_hosts)
        except ValueError as e:
            errors["registration_redirect_hosts"] = str(e)
    if errors:
        raise ProtocolRefused(errors)
    row = db.get(TenantProtocol, tenant_id)
    before = snapshot.from_row(row)
    changed = {name: value for name, value in checked.items()
               if as_dict(before)[name] != value}
    if changed:
        if row is None:
            row = TenantProtocol(tenant_id=tenant_id, require_par=False,
                                 dpop_nonce_required=False, registration_redirect_hosts=[])
            db.add(row)
        for name, value in changed.items():
            setattr(row, name, list(value) if isinstance(value, list) else value)
        row.updated_at = utcnow()
        audit.record(db, tenant_id, "protocol.changed", actor=actor, **changed)
        db.flush()
    return snapshot.from_row(row)
