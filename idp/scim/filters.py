"""SCIM filters (RFC 7644 3.4.2.2) and sorting as SQL: a filter is parsed and checked against
our models by scim2-models (``ScimFilter``), and its tree is turned into one WHERE clause here,
so a list reads only the rows it returns, whatever the tenant's size.

Each attribute a filter may name is one entry of ``USER_ATTRIBUTES`` or ``GROUP_ATTRIBUTES``;
any other, or an operator its type cannot take, is ``invalidFilter``. Strings compare without
regard to case, except ids and ``externalId`` (``caseExact``); on SQLite only ASCII letters do
(its LIKE), on PostgreSQL all (ILIKE). What PostgreSQL serves from an
index: ``userName``/``emails.value`` ``eq`` (the unique (tenant, email) index) and ``sw``,
``co``, ``ew`` (the trigram index of migration 0005, as the console's search), ``displayName``
``co``/``sw``/``ew``/``eq`` (its trigram index), ``externalId eq`` and ``id eq``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

from scim2_models import InvalidFilterException, InvalidValueException, ScimFilter
from scim2_models.path import (Comparison, CompareOperator, FilterVisitor, LogicalExpr,
                               LogicalOperator, Not, Present, ValuePath)
from sqlalchemy import and_, exists, false, func, not_, or_, select, true
from sqlalchemy.sql import ColumnElement

from idp.addresses import normalise_email
from idp.models import Group, User
from idp.models.tenancy import user_groups
from idp.scim import groups, users
from idp.scim.models import GROUP_SCHEMA, USER_SCHEMA
from idp.scim.models import Group as ScimGroup
from idp.scim.models import User as ScimUser
from idp.user_status import DEACTIVATED

TEXT, EXACT, EMAIL, BOOL, DATETIME, CONSTANT, MEMBER = (
    "text", "exact", "email", "bool", "datetime", "constant", "member")


@dataclass(frozen=True)
class Attribute:
    """What a filterable attribute is in SQL: ``column`` (or, for ``CONSTANT``, the value every
    row has), how it compares (``kind``), whether it may be NULL, and whether it sorts."""

    column: Any
    kind: str
    nullable: bool = False
    sortable: bool = True


def _last_modified(model):
    return func.coalesce(model.updated_at, model.created_at)


USER_ATTRIBUTES = {
    "id": Attribute(User.subject, EXACT),
    "userName": Attribute(User.email, EMAIL),
    "emails": Attribute(User.email, EMAIL),
    "emails.value": Attribute(User.email, EMAIL),
    "emails.type": Attribute("work", CONSTANT, sortable=False),
    "emails.primary": Attribute(True, CONSTANT, sortable=False),
    "displayName": Attribute(User.name, TEXT),
    "name.givenName": Attribute(User.given_name, TEXT, nullable=True),
    "name.familyName": Attribute(User.family_name, TEXT, nullable=True),
    "externalId": Attribute(User.external_id, EXACT, nullable=True),
    "active": Attribute(User.status, BOOL),
    "meta.created": Attribute(User.created_at, DATETIME),
    "meta.lastModified": Attribute(_last_modified(User), DATETIME),
}

GROUP_ATTRIBUTES = {
    "id": Attribute(Group.public_id, EXACT),
    "displayName": Attribute(Group.name, TEXT),
    "externalId": Attribute(Group.external_id, EXACT, nullable=True),
    "members": Attribute(None, MEMBER, sortable=False),
    "members.value": Attribute(None, MEMBER, sortable=False),
    "members.type": Attribute("User", CONSTANT, sortable=False),
    "meta.created": Attribute(Group.created_at, DATETIME, nullable=True),
    "meta.lastModified": Attribute(_last_modified(Group), DATETIME, nullable=True),
}


@dataclass(frozen=True)
class Target:
    """One resource type as the filters see it."""

    model: type  # the scim2-models class the filter is checked against
    schema: str
    attributes: dict[str, Attribute]
    is_member: Callable[[str], ColumnElement]  # Group only: has a member with this id
    columns: tuple  # what a page selects

    @property
    def by_lower_name(self) -> dict[str, Attribute]:
        """Attribute names are not case-sensitive (RFC 7643 2.1)."""
        return {name.lower(): attribute for name, attribute in self.attributes.items()}


def _group_has_member(subject: str) -> ColumnElement:
    return exists(select(user_groups.c.user_id)
                  .join(User, User.id == user_groups.c.user_id)
                  .where(user_groups.c.group_id == Group.id, User.subject == subject))


USERS = Target(ScimUser, USER_SCHEMA, USER_ATTRIBUTES, lambda subject: false(), users.COLUMNS)
GROUPS = Target(ScimGroup, GROUP_SCHEMA, GROUP_ATTRIBUTES, _group_has_member, groups.COLUMNS)


def _like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _datetime(value: Any) -> datetime:
    if not isinstance(value, str):
        raise InvalidFilterException(detail=f"{value!r} is not a date and time")
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidFilterException(detail=f"{value!r} is not a date and time "
                                            "(RFC 3339, e.g. 2026-01-31T12:00:00Z)") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _present(attribute: Attribute) -> ColumnElement:
    if attribute.kind == CONSTANT or not attribute.nullable and attribute.kind in (
            EMAIL, BOOL, DATETIME, EXACT):
        return true()
    if attribute.kind == MEMBER:
        return exists(select(user_groups.c.user_id).where(user_groups.c.group_id == Group.id))
    column = attribute.column
    present = column != ""
    return and_(column.is_not(None), present) if attribute.nullable else present


class _ToSql(FilterVisitor[ColumnElement]):
    """A filter tree to one SQL condition (``prefix``: inside ``emails[...]``)."""

    def __init__(self, target: Target, prefix: str = "", comparisons: list[int] | None = None):
        self.comparisons = comparisons if comparisons is not None else [0]  # shared by nested
        self.target, self.prefix = target, prefix

    def _attribute(self, node) -> tuple[str, Attribute]:
        path = node.attr_path
        if path.uri and path.uri.lower() != self.target.schema.lower():
            raise InvalidFilterException(detail=f"{path} is not an attribute we filter on")
        name = (path.attr + (f".{path.sub_attr}" if path.sub_attr else "")).lower()
        if self.prefix:
            name = f"{self.prefix}.{name}"
        attribute = self.target.by_lower_name.get(name)
        if attribute is None:
            raise InvalidFilterException(
                detail=f"{path} is not an attribute we filter on; filters may name "
                       + ", ".join(self.target.attributes))
        return name, attribute

    def visit_logical_expr(self, node: LogicalExpr) -> ColumnElement:
        join = and_ if node.op == LogicalOperator.and_ else or_
        return join(*(self.visit(term) for term in node.terms))

    def visit_not(self, node: Not) -> ColumnElement:
        return not_(self.visit(node.expr))

    def visit_present(self, node: Present) -> ColumnElement:
        return _present(self._attribute(node)[1])

    def visit_value_path(self, node: ValuePath) -> ColumnElement:
        name = node.attr_path.attr.lower()
        if name not in ("emails", "members") or node.attr_path.sub_attr:
            raise InvalidFilterException(detail=f"{node.attr_path}[...] is not a filter we take")
        return _ToSql(self.target, name, self.comparisons).visit(node.val_filter)

    def visit_comparison(self, node: Comparison) -> ColumnElement:
        self.comparisons[0] += 1
        if self.comparisons[0] > MAX_COMPARISONS:
            raise InvalidFilterException(detail=f"a filter compares at most {MAX_COMPARISONS} "
                                                "times; ask in several requests")
        name, attribute = self._attribute(node)
        op, value = node.op, node.value
        if value is None:  # "eq null": not there; "ne null": there (RFC 7644 3.4.2.2)
            if op not in (CompareOperator.eq, CompareOperator.ne):
                raise InvalidFilterException(detail=f"{name} {op.value} null compares nothing")
            present = _present(attribute)
            return not_(present) if op == CompareOperator.eq else present
        if attribute.kind == CONSTANT:
            return true() if _holds(attribute.column, op, value) else false()
        if attribute.kind == MEMBER:
            if op != CompareOperator.eq or not isinstance(value, str):
                raise InvalidFilterException(detail="members are filtered by eq and an id")
            return self.target.is_member(value)
        if attribute.kind == BOOL:
            if op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(value, bool):
                raise InvalidFilterException(detail=f"{name} is compared with eq or ne and "
                                                    "true or false")
            active = (value is True) == (op == CompareOperator.eq)
            return attribute.column != DEACTIVATED if active else attribute.column == DEACTIVATED
        if attribute.kind == DATETIME:
            if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
                raise InvalidFilterException(detail=f"{name} is a date: compare it with eq, ne, "
                                                    "gt, ge, lt or le")
            return self._compared(attribute, attribute.column, op, _datetime(value))
        if not isinstance(value, str):
            raise InvalidFilterException(detail=f"{name} is compared with a string")
        column = attribute.column
        if attribute.kind == EMAIL:
            value = normalise_email(value)  # stored so: an index serves it
        elif attribute.kind == TEXT:
            if op in (CompareOperator.eq, CompareOperator.ne):
                condition = column.ilike(_like(value), escape="\\")
                return self._guarded(attribute, condition if op == CompareOperator.eq
                                     else not_(condition))
            if op not in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
                column, value = func.lower(column), value.lower()
        if op in (CompareOperator.co, CompareOperator.sw, CompareOperator.ew):
            pattern = {CompareOperator.co: "%{}%", CompareOperator.sw: "{}%",
                       CompareOperator.ew: "%{}"}[op].format(_like(value))
            like = column.ilike if attribute.kind == TEXT else column.like
            return self._guarded(attribute, like(pattern, escape="\\"))
        return self._compared(attribute, column, op, value)

    def _compared(self, attribute: Attribute, column, op: CompareOperator, value) -> ColumnElement:
        condition = {
            CompareOperator.eq: lambda: column == value,
            CompareOperator.ne: lambda: column != value,
            CompareOperator.gt: lambda: column > value,
            CompareOperator.ge: lambda: column >= value,
            CompareOperator.lt: lambda: column < value,
            CompareOperator.le: lambda: column <= value,
        }[op]()
        if op == CompareOperator.ne and attribute.nullable:
            return or_(attribute.column.is_(None), condition)
        return self._guarded(attribute, condition)

    @staticmethod
    def _guarded(attribute: Attribute, condition: ColumnElement) -> ColumnElement:
        """Two-valued on a column that may be NULL, so ``not (...)`` means what it says."""
        if attribute.nullable:
            return and_(attribute.column.is_not(None), condition)
        return condition


def _holds(constant, op: CompareOperator, value) -> bool:
    if isinstance(constant, bool):
        if op not in (CompareOperator.eq, CompareOperator.ne) or not isinstance(value, bool):
            raise InvalidFilterException(detail="a boolean is compared with eq or ne")
        return (constant == value) == (op == CompareOperator.eq)
    if not isinstance(value, str):
        raise InvalidFilterException(detail="a string is compared with a string")
    have, want = constant.lower(), value.lower()
    return {
        CompareOperator.eq: have == want, CompareOperator.ne: have != want,
        CompareOperator.co: want in have, CompareOperator.sw: have.startswith(want),
        CompareOperator.ew: have.endswith(want), CompareOperator.gt: have > want,
        CompareOperator.ge: have >= want, CompareOperator.lt: have < want,
        CompareOperator.le: have <= want,
    }[op]


MAX_FILTER = 1000
MAX_COMPARISONS = 20


def where(target: Target, text: str) -> ColumnElement:
    """The SQL condition of the filter ``text`` (``InvalidFilterException`` if it is not one we
    can answer). A filter is at most ``MAX_FILTER`` characters and ``MAX_COMPARISONS``
    comparisons: each one is a condition the database checks on every candidate row, twice
    (the count and the page), so an unbounded filter would be a query that runs for minutes."""
    if len(text) > MAX_FILTER:
        raise InvalidFilterException(detail=f"a filter is at most {MAX_FILTER} characters")
    try:
        parsed = ScimFilter[target.model](text)
    except InvalidFilterException:
        raise
    except (InvalidValueException, ValueError, TypeError) as e:
        raise InvalidFilterException(detail=f"the filter is not valid: {e}") from None
    return _ToSql(target).visit(parsed.ast)


def order(target: Target, sort_by: str | None) -> Any:
    """The column ``sortBy`` names (None: the order of creation)."""
    if not sort_by:
        return None
    name = sort_by.lower()
    schema = target.schema.lower() + ":"
    if name.startswith(schema):
        name = name[len(schema):]
    attribute = target.by_lower_name.get(name)
    if attribute is None or not attribute.sortable:
        raise InvalidValueException(detail=f"sortBy {sort_by!r} is not an attribute we sort by")
    if attribute.kind == TEXT:
        return func.lower(attribute.column)
    return attribute.column
