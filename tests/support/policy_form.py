"""The console's policy form as a browser reads and posts it: the fields as the page shows them,
with changes typed over them."""

from __future__ import annotations

import html
import re

from idp import mfa
from tests.support.journey import CSRF, field


def input_tag(page: str, element_id: str) -> str:
    match = re.search(rf'<(?:input|textarea|option)[^>]*\bid="{re.escape(element_id)}"[^>]*>', page)
    assert match, f"no #{element_id} on the page"
    return match.group(0)


def checked(page: str, element_id: str) -> bool:
    return re.search(r"\schecked\b", input_tag(page, element_id)) is not None


def value(page: str, element_id: str) -> str:
    return html.unescape(re.search(r'value="([^"]*)"', input_tag(page, element_id)).group(1))


def textarea(page: str, element_id: str) -> str:
    return html.unescape(re.search(rf'<textarea[^>]*id="{element_id}"[^>]*>(.*?)</textarea>', page, re.S).group(1))


def form_of(page: str, **changes) -> dict:
    """The policy form as the page shows it, with ``changes`` typed over it."""
    data = {"csrf_token": field(CSRF, page)}
    data["mode"] = next(m for m in ("disabled", "optional", "required") if checked(page, f"mode-{m}"))
    data["scope"] = "selected" if checked(page, "scope-selected") else "everyone"
    groups = re.search(r'<select id="groups".*?</select>', page, re.S)
    data["groups"] = [html.unescape(v) for v in
                      re.findall(r'<option value="([^"]*)" selected>', groups.group(0))] if groups else []
    data["users"] = textarea(page, "users")
    data["grace_days"] = value(page, "grace_days")
    data["grace_skips"] = value(page, "grace_skips")
    data["factors"] = [f.alias or f.type for f in mfa.ordered() if checked(page, f"factor-{f.alias or f.type}")]
    data["roles_allowed"] = [r for r in ("admin", "mfa-admin", "member") if checked(page, f"role-{r}")]
    for name in ("self_disable", "login_token_bypass", "federation_jit", "lock_email_admins",
                 "self_service_reset", "require_verified_email", "self_registration"):
        if checked(page, name):
            data[name] = "on"
    for name in ("captcha_after", "lock_after", "lock_minutes", "password_min_length",
                 "reset_link_minutes"):
        data[name] = value(page, name)
    data["registration_domains"] = textarea(page, "registration_domains")
    data["accounts"] = re.search(r'<input type="hidden" name="accounts" value="([^"]+)">', page).group(1)
    for name in ("passkey_first", "passwordless"):
        if checked(page, name):
            data[name] = "on"
    data["passkeys"] = "shown"
    data["remembering"] = "shown"
    data["remember_days"] = value(page, "remember_days")
    data["remember_scope"] = "selected" if checked(page, "remember-selected") else "everyone"
    chosen = re.search(r'<select id="remember_groups".*?</select>', page, re.S)
    data["remember_groups"] = [html.unescape(v) for v in re.findall(
        r'<option value="([^"]*)" selected>', chosen.group(0))] if chosen else []
    data["remember_roles"] = [r for r in ("admin", "mfa-admin", "member")
                              if checked(page, f"remember-role-{r}")]
    for name, typed in changes.items():
        if typed is None:
            data.pop(name, None)
        else:
            data[name] = typed
    return data
