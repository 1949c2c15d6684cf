"""SCIM 2.0 (RFC 7644) at ``{issuer}/scim/v2``: Users, Groups and discovery, for a service
holding a client-credentials token of this tenant with the ``users:provision`` scope.

Every answer is ``application/scim+json``; every refusal a SCIM Error (RFC 7644 3.12) with its
status and, for a 400, its ``scimType``. A single resource carries ``meta.version``, a weak
ETag computed from what the resource reads as (so any change to it, by SCIM, the console or
the command line, changes it), also sent as the ``ETag`` header; ``If-Match`` on PUT, PATCH
and DELETE is checked under the row's lock (412 when it no longer holds), ``If-None-Match``
on GET answers 304. Changes commit in the request, all or nothing.
"""

from __future__ import annotations

import json
from typing import Any

from flask import Blueprint, Response, current_app, g, request
from pydantic import ValidationError
from scim2_models import (Context, Error, InvalidSyntaxException, InvalidValueException,
                          NotFoundException, PatchOp, PreconditionFailedException,
                          SCIMException, SearchRequest,
                          UniquenessException)
from sqlalchemy import func, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from werkzeug.exceptions import HTTPException

from idp import admin, db, directory, store, untrusted
from idp.admin import provisioning
from idp.directory import DirectoryError
from idp.models import Group, User
from idp.oidc.bearer import Refused, caller
from idp.scim import filters, groups, models, users
from idp.scim.shaping import Shape, etags, versioned
from idp.scim.models import (DEFAULT_COUNT, GROUP_SCHEMA, MAX_RESULTS, POLICY,
                             SERVICE_PROVIDER_CONFIG, USER_SCHEMA)
from idp.scim.models import Group as ScimGroup
from idp.scim.models import User as ScimUser
from idp.web import database_answer, issuer, load_tenant

bp = Blueprint("scim", __name__, url_prefix="/t/<tenant>/scim/v2")
bp.url_value_preprocessor(load_tenant)
SCOPE = "users:provision"
MEDIA_TYPE = "application/scim+json"
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
ANY = ["GET", "POST", "PUT", "PATCH", "DELETE"]


# -- answers ----------------------------------------------------------------------------------

def _json(payload: Any, status: int = 200, headers: dict | None = None) -> Response:
    return Response(json.dumps(payload), status, headers or {}, mimetype=MEDIA_TYPE)


def _error(status: int, detail: str, scim_type: str | None = None, headers=None) -> Response:
    error = Error(status=status, scim_type=scim_type, detail=detail)
    return _json(error.model_dump(scim_ctx=Context.DEFAULT, exclude_none=True), status, headers)


@bp.errorhandler(SCIMException)
def _scim_error(e: SCIMException):
    db.discard()
    error = e.to_error()
    return _json(error.model_dump(exclude_none=True), int(error.status or 400))


@bp.errorhandler(Refused)
def _refused(e: Refused):
    return _error(e.status, e.description, None, {"WWW-Authenticate": e.challenge})


@bp.errorhandler(DBAPIError)
def _database_error(e: DBAPIError):
    """A value the database refused is the request's fault (400); a database away, 503."""
    answer = database_answer(e, current_app.logger)
    if answer is None:
        raise e
    db.discard()
    status, body, headers = answer
    return _error(status, body["error_description"],
                  "invalidValue" if status == 400 else None, headers)


@bp.errorhandler(HTTPException)
def _http_error(e: HTTPException):
    db.discard()
    return _error(e.code or 500, e.description or e.name)


def _validation_error(e: ValidationError) -> SCIMException:
    first = Error.from_validation_errors(e)[0]
    return SCIMException.from_error(first)


def base() -> str:
    return f"{issuer()}/scim/v2"


def _one(found: dict, schema: str, status: int = 200) -> Response:
    version = versioned(found)
    headers = {"ETag": version}
    if status == 201:
        headers["Location"] = found["meta"]["location"]
    if (status == 200 and request.method == "GET"
            and version in etags(request.headers.get("If-None-Match"))):
        return Response(status=304, headers=headers)
    return _json(Shape(request.args, schema).apply(found), status, headers)


def _check_version(found: dict) -> None:
    """412 unless the client's ``If-Match`` names what the resource is now (or ``*``)."""
    wanted = etags(request.headers.get("If-Match"))
    if not wanted:
        return
    current = versioned(found)
    if "*" not in wanted and current not in wanted and current.removeprefix("W/") not in wanted:
        raise PreconditionFailedException(
            detail="the resource changed since that version was read; read it again")


MAX_DEPTH = 32  # the deepest resource or PATCH we read is 4 levels


def _payload() -> dict:
    try:
        payload = json.loads(request.get_data())
    except (ValueError, RecursionError):
        raise InvalidSyntaxException(detail="the request body is not JSON") from None
    if not isinstance(payload, dict):
        raise InvalidSyntaxException(detail="the request body must be a JSON object")
    check_text(payload)
    return payload


def check_text(value) -> None:
    """Refuse (400) a value nested deeper than ``MAX_DEPTH``, or holding a NUL or a lone
    surrogate: no database stores either (``untrusted.unstorable``)."""
    why = untrusted.unstorable(value, max_depth=MAX_DEPTH)
    if why == "deep":
        raise InvalidSyntaxException(detail=f"the request is nested more than {MAX_DEPTH} "
                                            "levels deep")
    if why == "nul":
        raise InvalidValueException(detail="the request holds a NUL character, which is never "
                                           "a valid value here")
    if why == "surrogate":
        raise InvalidValueException(detail="the request holds text that is not valid Unicode")


# -- who calls ---------------------------------------------------------------------------------

@bp.before_request
def _authenticate():
    g.scim_caller = caller(SCOPE)


def _actor() -> str:
    return g.scim_caller.actor


def _tenant():
    return directory.get_tenant(db.session(), g.tenant.slug)


# -- discovery (RFC 7644 4) --------------------------------------------------------------------

def _only_get():
    if request.method != "GET":
        return _error(405, "Discovery endpoints are read with GET only.")
    return None


@bp.route("/ServiceProviderConfig", methods=ANY)
def service_provider_config():
    if (refused := _only_get()) is not None:
        return refused
    config = SERVICE_PROVIDER_CONFIG.model_copy(deep=True)
    return _json(config.model_dump(scim_ctx=Context.RESOURCE_QUERY_RESPONSE))


def _listed(items: list[dict]) -> Response:
    return _json({"schemas": [LIST_RESPONSE], "totalResults": len(items), "startIndex": 1,
                  "itemsPerPage": len(items), "Resources": items})


@bp.route("/Schemas", methods=ANY)
def schemas():
    return _only_get() or _listed(list(models.published_schemas(base()).values()))


@bp.route("/Schemas/<path:schema_id>", methods=ANY)
def schema(schema_id):
    if (refused := _only_get()) is not None:
        return refused
    found = models.published_schemas(base()).get(schema_id)
    if found is None:
        raise NotFoundException(detail=f"there is no schema {schema_id!r} here")
    return _json(found)


@bp.route("/ResourceTypes", methods=ANY)
def resource_types():
    return _only_get() or _listed(list(models.published_resource_types(base()).values()))


@bp.route("/ResourceTypes/<name>", methods=ANY)
def resource_type(name):
    if (refused := _only_get()) is not None:
        return refused
    found = models.published_resource_types(base()).get(name)
    if found is None:
        raise NotFoundException(detail=f"there is no resource type {name!r} here")
    return _json(found)


@bp.route("/", defaults={"anything": ""}, methods=ANY)
@bp.route("/<path:anything>", methods=ANY)
def nothing_here(anything):
    if anything.rstrip("/") == ".search":
        return _error(501, "Search one resource type at a time: POST /Users/.search or "
                           "/Groups/.search.")
    raise NotFoundException(detail="There is nothing at this address. The endpoints are "
                                   "/Users, /Groups, /Schemas, /ResourceTypes and "
                                   "/ServiceProviderConfig.")


# -- lists (RFC 7644 3.4.2) --------------------------------------------------------------------

def _int(source: dict, name: str, default: int) -> int:
    value = source.get(name)
    if value is None or value == "":
        return default
    try:
        return int(value)
    except (TypeError, ValueError):
        raise InvalidValueException(detail=f"{name} must be a whole number") from None


def _search(target: filters.Target, entity, source: dict, shown) -> Response:
    """A page of ``entity`` rows of this tenant matching ``source``'s ``filter``, sorted and
    sliced as it asks (``startIndex`` is 1-based; ``count`` at most ``MAX_RESULTS``)."""
    check_text(dict(source))  # a query's values too: no NUL, no lone surrogate
    shape = Shape(source, target.schema)
    start = min(max(1, _int(source, "startIndex", 1)), 2**31)  # past any page there is
    count = min(MAX_RESULTS, max(0, _int(source, "count", DEFAULT_COUNT)))
    condition = entity.tenant_id == g.tenant.id
    if source.get("filter"):
        if not isinstance(source["filter"], str):
            raise InvalidValueException(detail="filter must be a string")
        condition = condition & filters.where(target, source["filter"])
    order = filters.order(target, source.get("sortBy"))
    sort_order = str(source.get("sortOrder") or "ascending").lower()
    if sort_order not in ("ascending", "descending"):
        raise InvalidValueException(detail="sortOrder is ascending or descending")
    session = db.session()
    total = session.scalar(select(func.count()).select_from(entity).where(condition))
    rows = []
    if count:
        keys = [order, entity.id] if order is not None else [entity.id]
        query = (select(*target.columns).where(condition)
                 .order_by(*(k.desc() if sort_order == "descending" else k.asc() for k in keys))
                 .offset(start - 1).limit(count))
        rows = list(session.execute(query))
    items = []
    for found in shown(rows, shape):
        versioned(found)
        items.append(shape.apply(found))
    return _json({"schemas": [LIST_RESPONSE], "totalResults": total, "startIndex": start,
                  "itemsPerPage": len(items), "Resources": items})


def _search_body() -> dict:
    payload = _payload()
    try:
        SearchRequest.model_validate(payload, scim_ctx=Context.SEARCH_REQUEST)
    except ValidationError as e:
        raise _validation_error(e) from None
    return payload


def _users_shown(rows: list, shape: Shape) -> list[dict]:
    memberships = users.groups_of(db.session(), [row.id for row in rows])
    address = base()
    return [users.shown(row, memberships.get(row.id, []), address) for row in rows]


def _groups_shown(rows: list[Group], shape: Shape) -> list[dict]:
    """A page of groups; their members (one statement for the page) only when wanted: a
    group of 10,000 people is a long answer, and clients that list groups to find one ask
    ``excludedAttributes=members``."""
    members = groups.member_ids(db.session(), [row.id for row in rows]) \
        if shape.wants_members() else {}
    address = base()
    return [groups.shown(group, members.get(group.id) if members else None, address)
            for group in rows]


@bp.get("/Users")
def users_list():
    return _search(filters.USERS, User, request.args, _users_shown)


@bp.post("/Users/.search")
def users_search():
    return _search(filters.USERS, User, _search_body(), _users_shown)


@bp.get("/Groups")
def groups_list():
    return _search(filters.GROUPS, Group, request.args, _groups_shown)


@bp.post("/Groups/.search")
def groups_search():
    return _search(filters.GROUPS, Group, _search_body(), _groups_shown)


# -- one user ----------------------------------------------------------------------------------

def _user_shown(user: User) -> dict:
    return users.shown(user, users.groups_of(db.session(), [user.id]).get(user.id, []), base())


def _user(subject: str, *, lock: bool = False) -> User:
    session = db.session()
    user = session.scalar(select(User).where(User.tenant_id == g.tenant.id,
                                             User.subject == subject))
    if user is None:
        raise NotFoundException(detail=f"there is no user {subject!r} in this organisation")
    if lock:  # the version is checked, and the change made, against what the last writer left
        directory.lock_user(session, user)
        session.refresh(user)
    return user


def _model(model, found: dict):
    """A resource as we show it, as a scim2-models object (what a PATCH is applied to)."""
    found = {k: v for k, v in found.items()}
    found["meta"] = {k: v for k, v in found["meta"].items() if k != "version"}
    return model.model_validate(found, scim_policy=POLICY)


def _validated(model, payload: dict, context):
    try:
        return model.model_validate(payload, scim_ctx=context, scim_policy=POLICY)
    except ValidationError as e:
        raise _validation_error(e) from None


def _without_read_only(payload: dict, names: tuple[str, ...]) -> dict:
    """A creation request without what the client may not set (RFC 7643 7: ``readOnly``), so
    a client that sends back what it read (``emails``, ``groups``, ``meta``) is not refused
    for it; the rest is checked."""
    return {k: v for k, v in payload.items() if k.lower() not in names}


def _changed(change) -> None:
    """Make ``change`` (a function of the session) and commit it, all or nothing; what the
    directory refuses is said as SCIM says it (``_refusal``)."""
    session = db.session()
    try:
        change(session)
        session.commit()
    except DirectoryError as e:
        raise _refusal(e) from None
    except IntegrityError:  # a name taken by a request that committed between check and write
        db.discard()
        raise UniquenessException(detail="that name was taken a moment ago") from None


def _replacement(model, current: dict, payload: dict):
    """What a PUT asks the resource to become (RFC 7644 3.5.1: what a client may not change
    is kept as it is), once its ``If-Match`` holds."""
    _check_version(current)
    wanted = _validated(model, payload, Context.RESOURCE_REPLACEMENT_REQUEST)
    wanted.replace(_model(model, current))
    return wanted


def _patched(model, current: dict, payload: dict):
    """The resource as a PATCH leaves it (RFC 7644 3.5.2, applied by scim2-models to what it
    is now), once its ``If-Match`` holds."""
    _check_version(current)
    patch = _validated(PatchOp[model], payload, Context.RESOURCE_PATCH_REQUEST)
    wanted = _model(model, current)
    patch.patch(wanted, POLICY)
    return wanted


@bp.post("/Users")
def user_create():
    payload = _without_read_only(_payload(), ("id", "meta", "emails", "groups"))
    users.refuse_password(payload)
    if not any(k.lower() == "active" for k in payload):
        payload["active"] = True  # every account has a status: left out, it is active
    wanted = _validated(ScimUser, payload, Context.RESOURCE_CREATION_REQUEST)
    made = []
    _changed(lambda session: made.append(
        users.create(session, current_app.config["IDP"], _tenant(), wanted, _actor())))
    return _one(_user_shown(_user(made[0].subject)), USER_SCHEMA, 201)


@bp.get("/Users/<subject>")
def user_get(subject):
    return _one(_user_shown(_user(subject)), USER_SCHEMA)


@bp.put("/Users/<subject>")
def user_replace(subject):
    payload = _payload()
    users.refuse_password(payload)
    user = _user(subject, lock=True)
    current = _user_shown(user)
    if not any(k.lower() == "active" for k in payload):
        payload["active"] = current["active"]  # a replacement that leaves it out keeps it
    wanted = _replacement(ScimUser, current, payload)
    _changed(lambda session: users.replace(session, current_app.config["IDP"], store.get(),
                                           _tenant(), user, wanted, _actor(),
                                           g.scim_caller.scopes))
    return _one(_user_shown(_user(subject)), USER_SCHEMA)


@bp.patch("/Users/<subject>")
def user_patch(subject):
    payload = _payload()
    _refuse_password_patch(payload)
    user = _user(subject, lock=True)
    wanted = _patched(ScimUser, _user_shown(user), payload)
    _changed(lambda session: users.replace(session, current_app.config["IDP"], store.get(),
                                           _tenant(), user, wanted, _actor(),
                                           g.scim_caller.scopes))
    return _one(_user_shown(_user(subject)), USER_SCHEMA)


def _refuse_password_patch(payload: dict) -> None:
    for operation in payload.get("Operations") or payload.get("operations") or []:
        if not isinstance(operation, dict):
            continue
        if str(operation.get("path") or "").lower().endswith("password"):
            users.refuse_password({"password": None})
        users.refuse_password(operation.get("value"))


@bp.delete("/Users/<subject>")
def user_delete(subject):
    user = _user(subject, lock=True)
    _check_version(_user_shown(user))
    users.guard_administrator(user, g.scim_caller.scopes, "The account")
    _changed(lambda session: admin.delete_user(session, store.get(), _tenant(), user.email,
                                               _actor()))
    return Response(status=204)


def _refusal(e: DirectoryError) -> SCIMException:
    """What the directory refused, as SCIM says it: a name taken is ``uniqueness`` (409); a
    rule of the tenant that the change would break (its last administrator, a group its
    policy names) a 409 conflict; anything else an ``invalidValue``."""
    if isinstance(e, directory.AlreadyExists):
        return UniquenessException(detail=str(e))
    if isinstance(e, (admin.LastAdministrator, admin.GroupInPolicy)):
        return SCIMException.from_error(Error(status=409, detail=str(e)))
    return InvalidValueException(detail=str(e))


# -- one group ---------------------------------------------------------------------------------

def _group(public_id: str, *, lock: bool = False) -> Group:
    session = db.session()
    group = session.scalar(select(Group).where(Group.tenant_id == g.tenant.id,
                                               Group.public_id == public_id))
    if group is None:
        raise NotFoundException(detail=f"there is no group {public_id!r} in this organisation")
    if lock:
        provisioning.lock_group(session, group)
        session.refresh(group)
    return group


def _group_shown(group: Group) -> dict:
    return groups.shown(group, groups.member_ids(db.session(), [group.id]).get(group.id), base())


@bp.post("/Groups")
def group_create():
    wanted = _validated(ScimGroup, _without_read_only(_payload(), ("id", "meta")),
                        Context.RESOURCE_CREATION_REQUEST)
    made = []
    _changed(lambda session: made.append(groups.create(session, _tenant(), wanted, _actor())))
    return _one(_group_shown(_group(made[0].public_id)), GROUP_SCHEMA, 201)


@bp.get("/Groups/<public_id>")
def group_get(public_id):
    return _one(_group_shown(_group(public_id)), GROUP_SCHEMA)


@bp.put("/Groups/<public_id>")
def group_replace(public_id):
    payload = _payload()
    group = _group(public_id, lock=True)
    wanted = _replacement(ScimGroup, _group_shown(group), payload)
    _changed(lambda session: groups.replace(session, _tenant(), group, wanted, _actor()))
    return _one(_group_shown(_group(public_id)), GROUP_SCHEMA)


@bp.patch("/Groups/<public_id>")
def group_patch(public_id):
    payload = _payload()
    group = _group(public_id, lock=True)
    wanted = _patched(ScimGroup, _group_shown(group), payload)
    _changed(lambda session: groups.replace(session, _tenant(), group, wanted, _actor()))
    return _one(_group_shown(_group(public_id)), GROUP_SCHEMA)


@bp.delete("/Groups/<public_id>")
def group_delete(public_id):
    group = _group(public_id, lock=True)
    _check_version(_group_shown(group))
    _changed(lambda session: admin.delete_group(session, _tenant(), group, _actor()))
    return Response(status=204)
