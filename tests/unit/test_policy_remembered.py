"""policy.decide() with a remembered browser: it stands in for the tenant's policy's second step,
only for the users the tenant's remember settings cover, and never for what the relying party
asks itself (a level, a new authentication) nor for the console's step-up.

Each row reads: given this tenant, this user and this request, a password sign-in from a
remembered browser is ... .
"""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from idp.policy import AdminState, Mode, Need, Progress, Requirements, decide
from tests.support.policy import tenant_policy, user_facts

NOW = datetime(2026, 12, 3, 12, 0, tzinfo=timezone.utc)
REMEMBERED = Progress(remembered=True)
FRESH = Progress()
REMEMBERING = tenant_policy(mode=Mode.REQUIRED, remember_days=30)


def alice(**kw):
    kw.setdefault("id", 7)
    kw.setdefault("enrolled", {"totp"})
    return user_facts(**kw)


def run(policy=REMEMBERING, user=None, req=Requirements(), progress=REMEMBERED):
    return decide(policy, user or alice(), req, progress, NOW)


def test_a_remembered_browser_satisfies_the_policy_and_says_so():
    d = run()
    assert d.need is Need.NOTHING and d.remembered, d.reason
    assert "remembered" in d.reason


def test_without_the_browser_the_policy_asks_and_the_checkbox_may_be_offered():
    d = run(progress=FRESH)
    assert d.need is Need.CHALLENGE and d.rememberable and not d.remembered


@pytest.mark.parametrize("req", [
    Requirements(acr_values=("mfa",)),  # the portal asks for two factors now
    Requirements(essential_acr=("mfa",)),
    Requirements(client_min_acr="mfa"),  # the client's floor
    Requirements(client_min_acr="phr"),
], ids=["acr_values", "essential", "client-floor", "client-floor-phr"])
def test_never_for_a_level_the_relying_party_asks(req):
    d = run(req=req, user=alice(enrolled={"totp", "webauthn"}))
    assert d.need is Need.CHALLENGE and not d.remembered, d.reason
    assert not d.counts_for_policy  # asked by the portal: the policy's step was stood in for


@pytest.mark.parametrize("req", [
    Requirements(fresh_authentication=True),  # prompt=login, max_age exceeded
    Requirements(second_step=True),  # the console's step-up
], ids=["reauthentication", "console"])
def test_never_for_a_new_authentication(req):
    d = run(req=req)
    assert d.need is Need.CHALLENGE and not d.remembered and not d.rememberable, d.reason


def test_a_voluntary_level_above_the_floor_keeps_the_reauthentication():
    """The fallback to what must be met (an unreachable wish) keeps the request's other asks."""
    req = Requirements(acr_values=("phr",), client_min_acr="pwd", fresh_authentication=True)
    d = run(req=req)
    assert d.need is Need.CHALLENGE and not d.remembered, d.reason


@pytest.mark.parametrize("policy,user,covered", [
    (tenant_policy(mode=Mode.REQUIRED, remember_days=0), alice(), False),  # off
    (REMEMBERING, alice(role="admin"), True),
    (tenant_policy(mode=Mode.REQUIRED, remember_days=30, remember_roles=frozenset({"member"})),
     alice(role="admin"), False),  # admins' browsers are not remembered here
    (tenant_policy(mode=Mode.REQUIRED, remember_days=30, remember_everyone=False,
                   remember_groups=frozenset({"Sales"})), alice(groups={"Sales"}), True),
    (tenant_policy(mode=Mode.REQUIRED, remember_days=30, remember_everyone=False,
                   remember_groups=frozenset({"Sales"})), alice(groups={"Finance"}), False),
    (REMEMBERING, alice(admin_state=AdminState.ENFORCED), True),  # a second step, still
], ids=["off", "admin", "role-not-covered", "in-group", "not-in-group", "enforced"])
def test_only_for_those_the_remember_settings_cover(policy, user, covered):
    d = run(policy=policy, user=user)
    assert d.satisfied is covered, d.reason
    assert run(policy=policy, user=user, progress=FRESH).rememberable is covered


def test_no_factor_left_to_answer_means_set_one_up():
    """An admin's reset (the browsers are forgotten too) or a user with no factor: a remembered
    browser stands in for no setup."""
    assert run(user=alice(must_reenroll=True, enrolled=())).need is Need.ENROLL
    assert run(user=alice(enrolled=())).need is Need.ENROLL


def test_a_challenge_the_portal_alone_asks_offers_no_checkbox():
    """Off by policy, asked by the portal: remembering would stand in for nothing later."""
    d = run(policy=tenant_policy(mode=Mode.DISABLED, remember_days=30), progress=FRESH,
            req=Requirements(acr_values=("mfa",)))
    assert not d.rememberable


def test_the_second_step_proved_now_is_not_the_browser():
    d = run(progress=Progress(methods=("pwd", "otp"), remembered=True))
    assert d.satisfied and not d.remembered
