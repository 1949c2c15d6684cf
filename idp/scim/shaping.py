"""What a SCIM answer shows of a resource: its version (``meta.version``, a weak ETag of what
it reads as) and the attributes a client asked for (RFC 7644 3.9), applied to a resource in
its JSON form (``idp.scim.users.shown``, ``idp.scim.groups.shown``)."""

from __future__ import annotations

import hashlib

from scim2_models import InvalidValueException


def versioned(found: dict) -> str:
    """Set and return ``meta.version`` of a resource in its JSON form: a weak ETag of what it
    reads as (RFC 7232 2.3; RFC 7644 3.14), so any change to it changes it."""
    found["meta"].pop("version", None)
    # Built by one function in one order (``users.shown``, ``groups.shown``): its repr is the
    # same wherever the same resource is shown, and cheaper than a JSON encoding.
    digest = hashlib.sha256(repr(found).encode()).hexdigest()[:20]
    found["meta"]["version"] = f'W/"{digest}"'
    return found["meta"]["version"]


ALWAYS = ("schemas", "id")  # returned whatever a client asks (RFC 7643 7: ``always``)


def _names(value) -> list[str]:
    if value is None or value == "":
        return []
    items = value if isinstance(value, list) else [value]
    if not all(isinstance(item, str) for item in items):
        raise InvalidValueException(detail="attributes and excludedAttributes are lists of "
                                           "attribute names")
    return [name.strip() for item in items for name in item.split(",") if name.strip()]


class Shape:
    """What a client asked to see of each resource (RFC 7644 3.9): ``attributes`` (only
    these, and ``id``) or ``excludedAttributes`` (all but these), by name, ``name.sub`` for
    one sub-attribute, optionally behind the schema's URN; names are not case-sensitive."""

    def __init__(self, source, schema: str):
        self.only = self._paths(_names(source.get("attributes")), schema)
        self.without = self._paths(_names(source.get("excludedAttributes")), schema)
        if self.only and self.without:
            raise InvalidValueException(detail="send attributes or excludedAttributes, not both")

    @staticmethod
    def _paths(names: list[str], schema: str) -> set[tuple[str, str | None]]:
        paths = set()
        for name in names:
            lowered = name.lower()
            if lowered.startswith(schema.lower() + ":"):
                lowered = lowered[len(schema) + 1:]
            attr, _, sub = lowered.partition(".")
            paths.add((attr, sub or None))
        return paths

    def wants_members(self) -> bool:
        if self.only:
            return any(attr == "members" for attr, _ in self.only)
        return ("members", None) not in self.without

    def apply(self, found: dict) -> dict:
        if not self.only and not self.without:
            return found
        shaped = {}
        for key, value in found.items():
            attr = key.lower()
            if key in ALWAYS:
                shaped[key] = value
            elif self.only:
                subs = {sub for a, sub in self.only if a == attr}
                if None in subs:
                    shaped[key] = value
                elif subs:
                    kept = self._subs(value, lambda k: k.lower() in subs)
                    if kept:
                        shaped[key] = kept
            elif (attr, None) not in self.without:
                subs = {sub for a, sub in self.without if a == attr}
                shaped[key] = self._subs(value, lambda k: k.lower() not in subs) if subs else value
        return shaped

    @staticmethod
    def _subs(value, keep):
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if keep(k)}
        if isinstance(value, list):
            return [item for item in (Shape._subs(v, keep) for v in value) if item]
        return value



def etags(header: str | None) -> list[str]:
    return [part.strip() for part in (header or "").split(",") if part.strip()]
