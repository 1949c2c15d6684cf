"""Properties of ``policy.decide`` over every combination Hypothesis finds: what the examples
in test_policy.py show for five portals must hold for all facts."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from idp.policy import (LEVELS, AdminState, Mode, Need, Primary, Progress, Requirements,
                        Standing, TenantPolicy, UserFacts, amr_and_acr, console_demand, decide,
                        level_at_least, policy_applies, standing)
from tests.support.policy import EVERY_FACTOR, KINDS

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
# What may be asked to set up first: every kind but those that recover an account.
FIRST_SETUPS = frozenset(k.type for k in KINDS.kinds if not k.recovery)
factor_sets = st.frozensets(st.sampled_from(EVERY_FACTOR))
acr_values = st.lists(st.sampled_from([*LEVELS, "urn:unknown", ""]), max_size=3).map(tuple)

policies = st.builds(
    TenantPolicy,
    mode=st.sampled_from(Mode),
    everyone=st.booleans(),
    groups=st.frozensets(st.sampled_from(["finance", "staff"])),
    users=st.frozensets(st.integers(1, 3)),
    grace_until=st.none() | st.sampled_from([NOW - timedelta(days=1), NOW + timedelta(days=1)]),
    grace_skips=st.none() | st.integers(0, 3),
    allowed_factors=factor_sets,
    roles_allowed=st.frozensets(st.sampled_from(["admin", "member"])),
    self_disable=st.booleans(),
    login_token_bypass=st.booleans(),
)
users = st.builds(
    UserFacts,
    id=st.integers(1, 3),
    kinds=st.just(KINDS),
    role=st.sampled_from(["admin", "member"]),
    groups=st.frozensets(st.sampled_from(["finance", "staff"])),
    admin_state=st.sampled_from(AdminState),
    must_reenroll=st.booleans(),
    skips_used=st.integers(0, 4),
    enrolled=factor_sets,
)
requests = st.builds(Requirements, acr_values=acr_values, essential_acr=acr_values,
                     client_min_acr=st.none() | st.sampled_from([*LEVELS, "nonsense"]))
progresses = st.builds(
    Progress,
    primary=st.sampled_from(Primary),
    methods=st.lists(st.sampled_from(["pwd", *sorted({k.amr for k in KINDS.kinds})]), min_size=1,
                     max_size=3, unique=True).map(tuple),
    enrollment_skipped=st.booleans(),
)
NO_ASK = Requirements()


@settings(max_examples=800)
@given(policies, users, requests, progresses)
def test_every_decision_is_well_formed_and_repeatable(policy, user, req, progress):
    decision = decide(policy, user, req, progress, NOW)
    assert decision == decide(policy, user, req, progress, NOW)  # pure
    assert decision.reason
    if decision.need is Need.CHALLENGE:
        # Only factors the user holds, the tenant allows and this sign-in has not used yet.
        assert decision.factors
        assert set(decision.factors) <= user.enrolled & policy.allowed_factors
        assert not {KINDS.amr(f) for f in decision.factors} & set(progress.methods)
    if decision.need is Need.ENROLL:
        assert decision.factors and set(decision.factors) <= FIRST_SETUPS
        assert set(decision.factors) <= policy.allowed_factors
    if decision.need is Need.REFUSE:
        # The RP asked for what cannot be had here, or the tenant allows nothing to set up.
        assert decision.error in ("unmet_authentication_requirements", "access_denied")
    else:
        assert decision.error is None
    if decision.need is Need.PASSWORD:
        # Only a sign-in that began with a passkey is sent back for the password.
        assert progress.primary is Primary.PASSKEY


@settings(max_examples=800)
@given(policies, users, progresses)
def test_a_required_policy_is_never_skipped_after_a_password_alone(policy, user, progress):
    policy = TenantPolicy(**{**policy.__dict__, "mode": Mode.REQUIRED})
    progress = Progress(Primary.PASSWORD, ("pwd",), enrollment_skipped=False)
    if not policy_applies(policy, user):
        return
    decision = decide(policy, user, NO_ASK, progress, NOW)
    in_grace = decision.need is Need.ENROLL and decision.skippable
    assert decision.need is not Need.NOTHING, decision
    if user.enrolled & policy.allowed_factors:
        assert decision.need is Need.CHALLENGE  # who holds a factor is asked for it
    if user.must_reenroll or user.admin_state is AdminState.ENFORCED:
        assert not in_grace  # a reset or an admin's enforcement has no grace


@settings(max_examples=500)
@given(policies, users, progresses)
def test_nobody_is_asked_for_a_factor_the_policy_does_not_apply_to(policy, user, progress):
    if policy_applies(policy, user):
        return
    # Without a relying party's request, a user outside the policy signs in as they are (or,
    # where a passkey may not be the first step, with their password).
    allowed = {Need.NOTHING, Need.PASSWORD} if progress.primary is Primary.PASSKEY else {Need.NOTHING}
    assert decide(policy, user, NO_ASK, progress, NOW).need in allowed


def _passkeys_first(policy: TenantPolicy, user: UserFacts) -> tuple[TenantPolicy, UserFacts]:
    """``policy`` letting a passkey be the first step, for ``user`` who holds one."""
    policy = TenantPolicy(**{**policy.__dict__, "passkey_first": True,
                             "allowed_factors": policy.allowed_factors | {"webauthn"},
                             "roles_allowed": policy.roles_allowed | {user.role}})
    if policy.mode is Mode.DISABLED:
        policy = TenantPolicy(**{**policy.__dict__, "mode": Mode.OPTIONAL})
    return policy, UserFacts(**{**user.__dict__, "enrolled": user.enrolled | {"webauthn"}})


@settings(max_examples=800)
@given(policies, users, requests)
def test_a_passkey_that_verified_its_user_is_a_whole_sign_in(policy, user, req):
    """Two kinds of factor in one (hwk + user, acr phr): nothing more is asked, whatever the
    tenant's policy or the portal's level; only a level we do not offer is refused."""
    policy, user = _passkeys_first(policy, user)
    decision = decide(policy, user, req, Progress(Primary.PASSKEY, ("hwk", "user")), NOW)
    assert decision.need in (Need.NOTHING, Need.REFUSE), decision
    if decision.need is Need.REFUSE:
        assert any(v not in LEVELS for v in req.essential_acr) \
            or req.client_min_acr not in (None, *LEVELS)


@settings(max_examples=800)
@given(policies, users, requests)
def test_a_passkey_without_user_verification_never_does_more_than_a_password(policy, user, req):
    """One step, like a password: it ends a sign-in only where a password alone would, and
    where more is needed the sign-in goes back to the password (never to a second step of
    the same kind, which would prove one kind twice)."""
    policy, user = _passkeys_first(policy, user)
    alone = decide(policy, user, req, Progress(Primary.PASSWORD, ("pwd",)), NOW)
    passkey = decide(policy, user, req, Progress(Primary.PASSKEY, ("hwk",)), NOW)
    if alone.need in (Need.NOTHING, Need.REFUSE):
        assert passkey.need is alone.need
    else:
        assert passkey.need is Need.PASSWORD, passkey


@settings(max_examples=300)
@given(policies, users, requests)
def test_no_passkey_is_a_first_step_where_the_tenant_says_no(policy, user, req):
    policy, user = _passkeys_first(policy, user)
    off = TenantPolicy(**{**policy.__dict__, "passkey_first": False})
    decision = decide(off, user, req, Progress(Primary.PASSKEY, ("hwk", "user")), NOW)
    assert decision.need in (Need.PASSWORD, Need.REFUSE)


@settings(max_examples=500)
@given(policies, users)
def test_a_login_token_or_a_trusted_upstream_skip_the_second_factor(policy, user):
    token = decide(policy, user, NO_ASK, Progress(Primary.LOGIN_TOKEN, ("pwd",)), NOW)
    if policy.login_token_bypass:
        assert token.need is Need.NOTHING
    trusted = decide(policy, user, NO_ASK, Progress(Primary.FEDERATION_TRUSTED, ("pwd",)), NOW)
    assert trusted.need is Need.NOTHING


@settings(max_examples=800)
@given(policies, users, requests, progresses)
def test_a_level_that_must_be_met_is_met_or_pursued_or_refused(policy, user, req, progress):
    decision = decide(policy, user, req, progress, NOW)
    floor = req.client_min_acr if req.client_min_acr in LEVELS else None
    if decision.need is Need.NOTHING and floor:
        # The client's registered minimum is never answered below it.
        assert level_at_least(amr_and_acr(list(progress.methods))[1], floor)


@settings(max_examples=800)
@given(policies, users)
def test_the_console_shows_on_exactly_whom_a_password_sign_in_challenges(policy, user):
    """``standing`` (the users list, the user page, the report) and ``decide`` never disagree."""
    user = UserFacts(**{**user.__dict__, "skips_used": 0})
    shown = standing(policy, user)
    decision = decide(policy, user, NO_ASK, Progress(), NOW)
    assert (shown.state is Standing.ON) == (decision.need is Need.CHALLENGE), shown
    if shown.state is Standing.ON:
        assert shown.factors == decision.factors
    assert (shown.state is Standing.REQUIRED) == (decision.need in (Need.ENROLL, Need.REFUSE)), shown


@settings(max_examples=800)
@given(policies, users)
def test_the_console_never_locks_out_an_admin_who_follows_its_step_up(policy, admin):
    """Answer every challenge and set up what is asked: the step-up ends where the console's
    demand is met, never in a refusal."""
    admin = UserFacts(**{**admin.__dict__, "role": "admin"})
    wanted = console_demand(policy, admin)
    if wanted.level is None:
        return
    req = Requirements(client_min_acr=wanted.level, second_step=True)
    methods, held = ["pwd"], set(admin.enrolled)
    for _ in range(4):
        facts = UserFacts(**{**admin.__dict__, "enrolled": frozenset(held)})
        decision = decide(policy, facts, req, Progress(methods=tuple(methods)), NOW)
        assert decision.need is not Need.REFUSE, decision.reason
        if decision.need is Need.NOTHING:
            break
        factor = decision.factors[0]
        held.add(factor)
        methods.append(KINDS.amr(factor))
    acr = amr_and_acr(methods)[1]
    assert wanted.met_by(acr, methods), (methods, wanted)
