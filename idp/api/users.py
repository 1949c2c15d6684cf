"""Users: the list (filters, cursor pages), one user, creating or inviting, changing, the
account's life (deactivate, reactivate, delete), their two-step verification (enforce,
exempt, reset, unlock, forget remembered browsers) and their sessions.

A user is named by their public id (the OIDC ``sub``), never by a row id or an address.
Scopes: reads ``admin:read``; creating, deactivating, reactivating and deleting accounts
``users:provision``; changing name, role or groups and ending sessions ``admin:write``; the
two-step verification actions ``mfa:manage``.
"""

from __future__ import annotations

from datetime import datetime, timezone
from urllib.parse import urlencode

from flask import current_app, g, request
from sqlalchemy import select

from idp import admin, db, mfa, store, tenant_policy, web
from idp.admin import invitations, user_list
from idp.api import models
from idp.api.base import (after_cursor, bp, current_caller, cursor_of, guard_privileged,
                          not_found, operation)
from idp.journey import remembered
from idp.journey import session as sso
from idp.mfa import flow
from idp.models import Authenticator, User

TAGS = ("users",)


def user_by_id(user_id: str) -> User:
    """This tenant's user with the public id ``user_id`` (404 otherwise, also for another
    tenant's user)."""
    found = db.session().scalar(select(User).where(User.tenant_id == g.tenant.id,
                                                   User.subject == user_id[:64]))
    if found is None:
        raise not_found("user")
    return found


def _policy():
    return tenant_policy.tenant_policy(db.session(), g.tenant)


def _row(user: User) -> user_list.UserRow:
    return user_list.rows_of(db.session(), store.get(), flow.guard(), _policy(), g.tenant.id,
                             [user])[0]


def _mfa(row: user_list.UserRow, user: User) -> models.MfaState:
    return models.MfaState(state=row.shield.state, label=row.shield.label,
                           reason=row.shield.reason, admin_state=user.mfa_admin_state,
                           must_reenroll=user.mfa_must_reenroll,
                           factors=list(row.shield.factors), locked=row.shield.locked,
                           remembered_browsers=row.remembered, passkeys=row.passkeys)


def _shown(user: User, row: user_list.UserRow | None = None) -> models.User:
    row = row or _row(user)
    return models.User(id=user.subject, email=user.email, name=user.name, role=user.role,
                       status=user.status, email_verified=user.email_verified,
                       groups=sorted(grp.name for grp in user.groups),
                       created_at=user.created_at, mfa=_mfa(row, user))


def _location(user: User) -> str:
    return f"{web.issuer()}/api/v1/users/{user.subject}"


@bp.get("/users")
@operation("admin:read", query=models.UserQuery, ok={"HTTP_200": models.UserPage}, tags=TAGS)
def list_users():
    """List users

    The tenant's users in the order they were created, filtered; a page holds at most
    `limit` (≤ 200), `next_cursor` continues after it."""
    q: models.UserQuery = request.context.query
    since = q.created_since
    if since is not None and since.tzinfo is None:
        since = since.replace(tzinfo=timezone.utc)
    filters = user_list.Filters(mfa=q.mfa or "", locked=bool(q.locked), status=q.status or "",
                                group=(q.group or "").strip(), role=q.role or "",
                                email=q.email or "", email_prefix=q.email_prefix or "",
                                created_since=since)
    pairs, last = user_list.page_by_id(db.session(), store.get(), flow.guard(), _policy(),
                                       g.tenant.id, after_cursor(q.cursor), q.limit, filters)
    following = cursor_of(last)
    nxt = None
    if following:
        args = {k: v for k, v in request.args.items() if k != "cursor"}
        nxt = f"{web.issuer()}/api/v1/users?{urlencode({**args, 'cursor': following})}"
    return models.UserPage(items=[_shown(u, r) for u, r in pairs], next_cursor=following,
                           next=nxt)


@bp.post("/users")
@operation("users:provision", body=models.UserCreate, ok={"HTTP_201": models.User},
           tags=TAGS, idempotent_create=True)
def create_user():
    """Create or invite a user

    Without `password` the user is invited: the account is `invited` and a link to choose a
    password is mailed to them (good for 7 days; inviting someone invited already mails a new
    link). With `password` the account is active now, once the password passes the tenant's
    password rules (else 422). Needs `users:provision`. Honours `Idempotency-Key`."""
    body: models.UserCreate = request.context.json
    guard_privileged(body.role, "Creating")
    session, actor = db.session(), current_caller().actor
    if body.password is None:
        user = invitations.invite(session, current_app.config["IDP"], g.tenant, body.email, actor,
                                  name=body.name or "", role=body.role, groups=body.groups).user
    else:
        user = admin.create_user(session, current_app.config["IDP"],
                                 current_app.extensions["idp.passwords"], g.tenant, body.email,
                                 body.password, actor, name=body.name or "", role=body.role,
                                 groups=body.groups)
    session.flush()
    return _shown(user), 201, {"Location": _location(user)}


@bp.get("/users/<user_id>")
@operation("admin:read", ok={"HTTP_200": models.User}, tags=TAGS)
def get_user(user_id):
    """Get a user"""
    return _shown(user_by_id(user_id))


@bp.patch("/users/<user_id>")
@operation("admin:write", body=models.UserUpdate, ok={"HTTP_200": models.User}, tags=TAGS)
def update_user(user_id):
    """Change a user

    Name, role and groups (the whole list). The last active administrator keeps their role.
    Needs `admin:write`."""
    user = user_by_id(user_id)
    body: models.UserUpdate = request.context.json
    session, actor = db.session(), current_caller().actor
    if body.name is not None:
        admin.update_user(session, g.tenant, user, actor, name=body.name)
    if body.groups is not None:
        admin.set_groups(session, g.tenant, user.email, body.groups, actor)
    if body.role is not None:
        admin.set_role(session, g.tenant, user.email, body.role, actor)
    session.flush()
    return _shown(user)


@bp.post("/users/<user_id>/deactivate")
@operation("users:provision", ok={"HTTP_200": models.User}, tags=TAGS)
def deactivate_user(user_id):
    """Deactivate a user

    They cannot sign in; every session and token of theirs ends now. Needs
    `users:provision`."""
    user = user_by_id(user_id)
    guard_privileged(user.role, "Deactivating")
    admin.deactivate(db.session(), store.get(), g.tenant, user.email, current_caller().actor)
    return _shown(user)


@bp.post("/users/<user_id>/reactivate")
@operation("users:provision", ok={"HTTP_200": models.User}, tags=TAGS)
def reactivate_user(user_id):
    """Reactivate a user

    A deactivated user signs in again, with the factors and groups they had. Needs
    `users:provision`."""
    user = user_by_id(user_id)
    guard_privileged(user.role, "Reactivating")
    admin.reactivate(db.session(), g.tenant, user.email, current_caller().actor)
    return _shown(user)


@bp.delete("/users/<user_id>")
@operation("users:provision", ok={"HTTP_204": None}, tags=TAGS)
def delete_user(user_id):
    """Delete a user

    The user and everything they own go; the audit trail stays. Needs `users:provision`."""
    user = user_by_id(user_id)
    guard_privileged(user.role, "Deleting")
    admin.delete_user(db.session(), store.get(), g.tenant, user.email, current_caller().actor)
    return "", 204


# -- two-step verification ----------------------------------------------------------------

def _factors(user: User) -> models.Factors:
    rows = db.session().scalars(select(Authenticator).where(
        Authenticator.user_id == user.id, Authenticator.tenant_id == g.tenant.id)
        .order_by(Authenticator.id))
    factors = [models.Factor(id=a.id, type=a.type, label=(str(mfa.get(a.type).label) if mfa.get(a.type)
                                                          else a.type),
                             name=a.name, created_at=a.created_at, last_used_at=a.last_used_at)
               for a in rows]
    browsers = [models.Browser(id=d.id, description=d.description, created_at=d.created_at,
                               expires_at=d.expires_at, last_used_at=d.last_used_at)
                for d in remembered.of_user(db.session(), g.tenant.id, user.id)]
    return models.Factors(mfa=_mfa(_row(user), user), factors=factors,
                          remembered_browsers=browsers)


@bp.get("/users/<user_id>/factors")
@operation("admin:read", ok={"HTTP_200": models.Factors}, tags=TAGS)
def get_factors(user_id):
    """A user's factors and MFA state

    The methods they set up, what the policy asks of them now (`mfa.state`), an admin's
    choice (`admin_state`), whether they are locked, and their remembered browsers."""
    return _factors(user_by_id(user_id))


def _mfa_action(user_id: str, action: str) -> models.Factors:
    user = user_by_id(user_id)
    guard_privileged(user.role, "Changing the second step of")
    admin.set_user_mfa(db.session(), g.tenant, user.email, action, current_caller().actor)
    db.session().flush()
    return _factors(user)


@bp.post("/users/<user_id>/mfa/enforce")
@operation("mfa:manage", ok={"HTTP_200": models.Factors}, tags=TAGS)
def enforce_mfa(user_id):
    """Enforce two-step verification

    The user must use it and cannot turn it off (a 422 when the tenant has two-step
    verification disabled). Needs `mfa:manage`."""
    return _mfa_action(user_id, "enforce")


@bp.post("/users/<user_id>/mfa/exempt")
@operation("mfa:manage", ok={"HTTP_200": models.Factors}, tags=TAGS)
def exempt_mfa(user_id):
    """Exempt from two-step verification

    The policy asks nothing more of this user. Needs `mfa:manage`."""
    return _mfa_action(user_id, "exempt")


@bp.post("/users/<user_id>/mfa/default")
@operation("mfa:manage", ok={"HTTP_200": models.Factors}, tags=TAGS)
def default_mfa(user_id):
    """Follow the policy again

    Undo an enforce or exempt. Needs `mfa:manage`."""
    return _mfa_action(user_id, "default")


@bp.post("/users/<user_id>/mfa/reset")
@operation("mfa:manage", ok={"HTTP_200": models.Factors}, tags=TAGS)
def reset_mfa(user_id):
    """Reset two-step verification

    Every factor is removed and remembered browsers forgotten; the user sets one up again at
    the next sign-in. Needs `mfa:manage`."""
    return _mfa_action(user_id, "reset")


@bp.post("/users/<user_id>/unlock")
@operation("mfa:manage", ok={"HTTP_200": models.Factors}, tags=TAGS)
def unlock_user(user_id):
    """Unlock an account

    A lock after failed attempts ends now, and the failures are forgotten. Needs
    `mfa:manage`."""
    user = user_by_id(user_id)
    guard_privileged(user.role, "Unlocking")
    admin.unlock(db.session(), flow.guard(), g.tenant, user.email, current_caller().actor)
    return _factors(user)


@bp.delete("/users/<user_id>/remembered-browsers")
@operation("mfa:manage", ok={"HTTP_200": models.Forgotten}, tags=TAGS)
def forget_browsers(user_id):
    """Forget remembered browsers

    Every browser that skips this user's second step asks for it again. Needs
    `mfa:manage`."""
    user = user_by_id(user_id)
    guard_privileged(user.role, "Changing the second step of")
    gone = admin.forget_browsers(db.session(), g.tenant, user.email, current_caller().actor)
    return models.Forgotten(browsers=gone)


# -- sessions -------------------------------------------------------------------------------

def _moment(stamp: int) -> datetime | None:
    return datetime.fromtimestamp(stamp, timezone.utc) if stamp else None


@bp.get("/users/<user_id>/sessions")
@operation("admin:read", ok={"HTTP_200": models.Sessions}, tags=TAGS)
def list_sessions(user_id):
    """A user's sessions

    The browsers they are signed in on, the latest sign-in first."""
    user = user_by_id(user_id)
    return models.Sessions(items=[
        models.Session(id=s.public_id, signed_in_at=_moment(s.started),
                       last_seen_at=_moment(s.last_seen), amr=list(s.amr), acr=s.acr,
                       ip=s.ip, user_agent=s.user_agent)
        for s in sso.of_user(g.tenant.id, user.id)])


@bp.delete("/users/<user_id>/sessions")
@operation("admin:write", ok={"HTTP_200": models.Ended}, tags=TAGS)
def end_sessions(user_id):
    """End all sessions

    Signs the user out everywhere: every session ends, every access and refresh token is
    revoked (their portals are told by back-channel logout), remembered browsers are
    forgotten. Needs `admin:write`."""
    user = user_by_id(user_id)
    ended = admin.sign_out_everywhere(db.session(), store.get(), g.tenant, user.email,
                                      current_caller().actor)
    return models.Ended(sessions=ended.sessions, tokens=ended.tokens)


@bp.delete("/users/<user_id>/sessions/<session_id>")
@operation("admin:write", ok={"HTTP_204": None}, tags=TAGS)
def end_session(user_id, session_id):
    """End one session

    That browser is signed out and the tokens issued under its session are revoked. Needs
    `admin:write`."""
    user = user_by_id(user_id)
    if not admin.end_session(db.session(), g.tenant, user.email, session_id,
                             current_caller().actor):
        raise not_found("session")
    return "", 204
