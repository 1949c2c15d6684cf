"""policy.decide() as decision tables: one per customer portal of the seeds, then step-up; then
what the console shows of a user (``standing``) and asks of an admin (``console_demand``).

Each row reads: given this tenant policy, this user and what the sign-in proved so far, the
decision is ... . These are the rules a tenant admin switches on; the hosted pages only
carry them out.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from idp.policy import (AdminState, Mode, Need, Primary, Progress, Requirements, Standing,
                        amr_and_acr, console_demand, decide, mfa_available, reported_acr,
                        standing)
from tests.support.policy import tenant_policy, user_facts

NOW = datetime(2026, 11, 23, 12, 0, tzinfo=timezone.utc)
PWD = Progress()


def run(policy, user, progress=PWD, req=Requirements()):
    return decide(policy, user, req, progress, NOW)


def user(**kw):
    kw.setdefault("id", 7)
    return user_facts(**kw)


# --- Klearcom: admins enforce per user; security questions only; users cannot toggle. -------
KLEARCOM = tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"kba"}), self_disable=False)


@pytest.mark.parametrize("facts,progress,need,factors", [
    (user(), PWD, Need.NOTHING, ()),  # not enforced: nothing
    (user(admin_state=AdminState.ENFORCED), PWD, Need.ENROLL, ("kba",)),  # prompted setup at next login
    (user(admin_state=AdminState.ENFORCED, enrolled={"kba"}), PWD, Need.CHALLENGE, ("kba",)),
    (user(admin_state=AdminState.ENFORCED, enrolled={"kba"}), Progress(methods=("pwd", "kba")), Need.NOTHING, ()),
    (user(must_reenroll=True), PWD, Need.ENROLL, ("kba",)),  # admin reset: set up again
    (user(admin_state=AdminState.EXEMPT, enrolled={"kba"}), PWD, Need.NOTHING, ()),  # admin disabled it
    (user(admin_state=AdminState.ENFORCED, enrolled={"totp"}), PWD, Need.ENROLL, ("kba",)),  # TOTP not allowed here
])
def test_klearcom(facts, progress, need, factors):
    d = run(KLEARCOM, facts, progress)
    assert (d.need, d.factors) == (need, factors), d.reason
    if need is Need.ENROLL:
        assert not d.skippable


def test_klearcom_questions_satisfy_the_policy_but_never_count_as_mfa():
    d = run(KLEARCOM, user(admin_state=AdminState.ENFORCED, enrolled={"kba"}), Progress(methods=("pwd", "kba")))
    assert d.satisfied
    assert amr_and_acr(["pwd", "kba"]) == (["pwd", "kba"], "pwd")


# --- ClickHelp: one portal switch; TOTP + backup codes; Contributors only; SSO/tokens skip. ---
CLICKHELP = tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"totp", "backup"}),
                         roles_allowed=frozenset({"admin"}), login_token_bypass=True)


@pytest.mark.parametrize("policy,facts,progress,need", [
    (CLICKHELP, user(role="admin", enrolled={"totp"}), PWD, Need.CHALLENGE),  # enabled it: asked
    (CLICKHELP, user(role="admin"), PWD, Need.NOTHING),  # not enabled by the user: nothing
    (CLICKHELP, user(role="member", enrolled={"totp"}), PWD, Need.NOTHING),  # Power Readers cannot use 2FA
    (CLICKHELP, user(role="admin", enrolled={"totp"}), Progress(Primary.LOGIN_TOKEN), Need.NOTHING),
    (CLICKHELP, user(role="admin", enrolled={"totp"}), Progress(Primary.FEDERATION_TRUSTED, ("fed",)), Need.NOTHING),
    (tenant_policy(mode=Mode.DISABLED), user(role="admin", enrolled={"totp"}), PWD, Need.NOTHING),  # codes ignored
    (CLICKHELP, user(role="admin", enrolled={"totp", "backup"}), PWD, Need.CHALLENGE),
])
def test_clickhelp(policy, facts, progress, need):
    assert run(policy, facts, progress).need is need


def test_clickhelp_power_readers_are_told_it_is_not_available():
    assert not mfa_available(CLICKHELP, user(role="member"))
    assert "not available" in run(CLICKHELP, user(role="member")).reason


def test_clickhelp_login_token_bypass_can_be_switched_off():
    strict = tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"totp"}), login_token_bypass=False)
    assert run(strict, user(enrolled={"totp"}), Progress(Primary.LOGIN_TOKEN)).need is Need.CHALLENGE


def test_an_untrusted_upstream_gets_the_local_policy():
    d = run(CLICKHELP, user(role="admin", enrolled={"totp"}), Progress(Primary.FEDERATION, ("fed",)))
    assert d.need is Need.CHALLENGE


# --- KloudEmail: per domain Required / Optional / Disabled; SMS or authenticator app. ---------
KLOUD = frozenset({"sms", "totp"})


@pytest.mark.parametrize("mode,enrolled,need,factors", [
    (Mode.REQUIRED, set(), Need.ENROLL, ("totp", "sms")),  # must set up at next login
    (Mode.REQUIRED, {"sms"}, Need.CHALLENGE, ("sms",)),
    (Mode.OPTIONAL, set(), Need.NOTHING, ()),  # may turn it on in Settings → Security
    (Mode.OPTIONAL, {"totp"}, Need.CHALLENGE, ("totp",)),
    (Mode.DISABLED, {"totp"}, Need.NOTHING, ()),
])
def test_kloudemail(mode, enrolled, need, factors):
    d = run(tenant_policy(mode=mode, allowed_factors=KLOUD), user(enrolled=enrolled))
    assert (d.need, d.factors) == (need, factors)


# --- Claromentis: chosen groups; optional at first (grace), enforced later; revoke → redo. ----
def claromentis(grace_until=None, grace_skips=None):
    return tenant_policy(mode=Mode.REQUIRED, everyone=False, groups=frozenset({"Finance"}),
                        allowed_factors=frozenset({"totp"}), grace_until=grace_until, grace_skips=grace_skips)


def test_claromentis_group_members_only():
    assert run(claromentis(), user(groups={"Sales"})).need is Need.NOTHING
    assert run(claromentis(), user(groups={"Finance"})).need is Need.ENROLL


def test_claromentis_grace_by_date_then_enforced():
    during = run(claromentis(grace_until=NOW + timedelta(days=14)), user(groups={"Finance"}))
    assert during.need is Need.ENROLL and during.skippable and "until 2026-12-07" in during.reason
    after = run(claromentis(grace_until=NOW - timedelta(seconds=1)), user(groups={"Finance"}))
    assert after.need is Need.ENROLL and not after.skippable


def test_grace_by_skips_counts_down():
    policy = claromentis(grace_skips=3)
    first = run(policy, user(groups={"Finance"}, skips_used=0))
    assert first.skippable and first.skips_left == 3
    last = run(policy, user(groups={"Finance"}, skips_used=2))
    assert last.skippable and last.skips_left == 1 and "1 more skip" in last.reason
    over = run(policy, user(groups={"Finance"}, skips_used=3))
    assert not over.skippable and over.skips_left == 0


def test_claromentis_revoked_user_sets_up_again_without_grace():
    d = run(claromentis(grace_until=NOW + timedelta(days=14)), user(groups={"Finance"}, must_reenroll=True))
    assert d.need is Need.ENROLL and not d.skippable


def test_single_users_can_be_targeted():
    policy = tenant_policy(mode=Mode.REQUIRED, everyone=False, users=frozenset({7}))
    assert run(policy, user(id=7)).need is Need.ENROLL
    assert run(policy, user(id=8)).need is Need.NOTHING


# --- The fifth portal: domain switch on, then enabled per user; "not available" when off. ----
def test_fifth_portal_domain_then_per_user():
    on = tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"totp"}), self_disable=False)
    assert run(on, user()).need is Need.NOTHING
    assert run(on, user(admin_state=AdminState.ENFORCED)).factors == ("totp",)
    off = tenant_policy(mode=Mode.DISABLED)
    d = run(off, user(admin_state=AdminState.ENFORCED, enrolled={"totp"}))
    assert d.need is Need.NOTHING and "not available" in d.reason


# --- Step-up: the relying party asks for a level. ---------------------------------------------
OPTIONAL_ALL = tenant_policy(mode=Mode.OPTIONAL)


def test_acr_values_mfa_from_a_pwd_session_asks_only_for_a_second_factor():
    d = run(OPTIONAL_ALL, user(enrolled={"totp", "webauthn"}), req=Requirements(acr_values=("mfa",)))
    assert d.need is Need.CHALLENGE and d.factors == ("webauthn", "totp") and d.target_acr == "mfa"


def test_phr_needs_webauthn():
    d = run(OPTIONAL_ALL, user(enrolled={"totp", "webauthn"}), Progress(methods=("pwd", "otp")),
            Requirements(acr_values=("phr",)))
    assert d.need is Need.CHALLENGE and d.factors == ("webauthn",)


def test_questions_never_reach_mfa():
    first = run(OPTIONAL_ALL, user(enrolled={"kba"}), req=Requirements(acr_values=("mfa",)))
    assert first.need is Need.CHALLENGE and first.factors == ("kba",)  # the policy's second step
    then = run(OPTIONAL_ALL, user(enrolled={"kba"}), Progress(methods=("pwd", "kba")),
               Requirements(acr_values=("mfa",)))
    assert then.need is Need.NOTHING and "token says what was done" in then.reason


def test_voluntary_phr_without_webauthn_is_answered_at_the_level_reached():
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(methods=("pwd", "otp")), Requirements(acr_values=("phr",)))
    assert d.need is Need.NOTHING


def test_essential_phr_without_webauthn_is_unmet():
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(methods=("pwd", "otp")), Requirements(essential_acr=("phr",)))
    assert d.need is Need.REFUSE and d.error == "unmet_authentication_requirements"


def test_essential_acr_is_met_by_the_lowest_listed_value():
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(methods=("pwd", "otp")),
            Requirements(essential_acr=("mfa", "phr")))
    assert d.satisfied


def test_unknown_essential_acr_is_unmet():
    d = run(OPTIONAL_ALL, user(), req=Requirements(essential_acr=("urn:example:loa:4",)))
    assert d.error == "unmet_authentication_requirements"


def test_client_minimum_acr_forces_first_setup_for_a_user_without_factors():
    d = run(OPTIONAL_ALL, user(), req=Requirements(client_min_acr="mfa"))
    assert d.need is Need.ENROLL and "kba" not in d.factors and not d.counts_for_policy


def test_client_minimum_acr_cannot_be_met_when_the_tenant_has_mfa_off():
    d = run(tenant_policy(mode=Mode.DISABLED), user(enrolled={"totp"}), req=Requirements(client_min_acr="mfa"))
    assert d.need is Need.REFUSE


def test_a_session_already_at_mfa_is_not_asked_again():
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(methods=("pwd", "otp", "mfa")),
            Requirements(acr_values=("mfa",), client_min_acr="mfa"))
    assert d.satisfied


def test_required_policy_and_step_up_ask_for_the_stronger_factor_at_once():
    policy = tenant_policy(mode=Mode.REQUIRED)
    d = run(policy, user(enrolled={"kba", "totp"}), req=Requirements(acr_values=("mfa",)))
    assert d.need is Need.CHALLENGE and d.factors == ("totp",)


def test_same_facts_same_decision():
    facts = (OPTIONAL_ALL, user(enrolled={"totp"}), Requirements(acr_values=("mfa",)), PWD, NOW)
    assert decide(*facts) == decide(*facts)


def test_a_grace_skip_lets_this_sign_in_through():
    policy = claromentis(grace_skips=2)
    d = run(policy, user(groups={"Finance"}), Progress(enrollment_skipped=True))
    assert d.satisfied


def test_a_factor_already_proved_is_never_asked_again():
    """A login-token or untrusted-upstream sign-in plus the only factor cannot loop."""
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(Primary.LOGIN_TOKEN, ("login_token", "otp")),
            Requirements(acr_values=("phr",)))
    assert d.need is Need.NOTHING
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(Primary.FEDERATION, ("fed", "otp")),
            Requirements(essential_acr=("phr",)))
    assert d.need is Need.REFUSE


def test_upstream_or_login_token_plus_a_possession_factor_is_mfa():
    assert amr_and_acr(["fed", "otp"]) == (["fed", "otp", "mfa"], "mfa")
    assert amr_and_acr(["login_token", "otp"]) == (["login_token", "otp", "mfa"], "mfa")
    assert amr_and_acr(["fed", "kba"]) == (["fed", "kba"], "pwd")
    assert amr_and_acr(["fed", "pwd", "mfa"]) == (["fed", "pwd", "mfa"], "mfa")  # a trusted upstream's word
    d = run(OPTIONAL_ALL, user(enrolled={"totp"}), Progress(Primary.LOGIN_TOKEN, ("login_token", "otp")),
            Requirements(acr_values=("mfa",)))
    assert d.satisfied


@pytest.mark.parametrize("reached,essential,reported", [
    ("mfa", (), "mfa"),  # no essential acr: the level reached
    ("phr", ("mfa", "phr"), "phr"),
    ("phr", ("pwd", "mfa"), "mfa"),  # one of the requested values: the highest one met
    ("mfa", ("urn:example:loa:4", "mfa"), "mfa"),
    ("pwd", ("urn:example:loa:4",), "pwd"),  # (decide() refused this sign-in already)
])
def test_an_essential_acr_is_reported_as_the_highest_requested_value_met(reached, essential,
                                                                           reported):
    assert reported_acr(reached, Requirements(essential_acr=essential)) == reported


def test_a_voluntary_higher_level_never_lowers_the_clients_floor():
    # Found by test_policy_properties: acr_values=phr, which a TOTP user cannot reach, used to
    # turn the client's registered minimum (mfa) into a wish, and the password alone got in.
    decision = run(tenant_policy(mode=Mode.OPTIONAL), user(enrolled={"totp"}),
                   req=Requirements(acr_values=("phr",), client_min_acr="mfa"))
    assert decision.need is Need.CHALLENGE and decision.factors == ("totp",)
    # With nothing to answer and nothing allowed to set up, the floor is refused, not waived.
    decision = run(tenant_policy(mode=Mode.DISABLED), user(),
                   req=Requirements(acr_values=("phr",), essential_acr=("mfa",)))
    assert decision.need is Need.REFUSE


def test_a_required_policy_with_nothing_to_set_up_refuses_rather_than_waives():
    # Found by test_policy_properties: backup codes alone allowed (they are not set up first)
    # left a user without factors on a setup page offering nothing.
    decision = run(tenant_policy(mode=Mode.REQUIRED, allowed_factors=frozenset({"backup"})), user())
    assert decision.need is Need.REFUSE and decision.error == "access_denied"


# --- What the console shows of a user (one state for the list, the user page, the report). ---

@pytest.mark.parametrize("policy,facts,state,factors,required", [
    # Klearcom: an admin turned it off for a user who holds questions: password only, "exempt".
    (KLEARCOM, user(admin_state=AdminState.EXEMPT, enrolled={"kba"}), Standing.EXEMPT, (), False),
    (KLEARCOM, user(admin_state=AdminState.ENFORCED, enrolled={"kba"}), Standing.ON, ("kba",), True),
    (KLEARCOM, user(admin_state=AdminState.ENFORCED), Standing.REQUIRED, (), True),
    (KLEARCOM, user(must_reenroll=True), Standing.REQUIRED, (), True),
    (KLEARCOM, user(), Standing.OPTIONAL, (), False),
    (KLEARCOM, user(enrolled={"totp"}), Standing.OPTIONAL, (), False),  # an app not allowed here
    # ClickHelp: Power Readers cannot use it; the portal-wide switch off turns everyone off.
    (CLICKHELP, user(role="member", enrolled={"totp"}), Standing.OFF, (), False),
    (tenant_policy(mode=Mode.DISABLED), user(enrolled={"totp"}), Standing.OFF, (), False),
    (CLICKHELP, user(role="admin", enrolled={"backup", "totp"}), Standing.ON, ("totp", "backup"), False),
    # Claromentis: a required group policy: its members show as required, others off.
    (tenant_policy(mode=Mode.REQUIRED, everyone=False, groups=frozenset({"finance"})),
     user(groups={"finance"}), Standing.REQUIRED, (), True),
    (tenant_policy(mode=Mode.REQUIRED, everyone=False, groups=frozenset({"finance"})),
     user(enrolled={"totp"}), Standing.OFF, (), False),
])
def test_the_standing_the_console_shows(policy, facts, state, factors, required):
    shown = standing(policy, facts)
    assert (shown.state, shown.factors, shown.required) == (state, factors, required), shown.reason


# --- What the account page reads of the same standing. -------------------------------------

@pytest.mark.parametrize("policy,facts,available,may_turn_off", [
    (OPTIONAL_ALL, user(enrolled={"totp"}), True, True),
    (tenant_policy(mode=Mode.OPTIONAL, self_disable=False), user(enrolled={"totp"}), True, False),
    (tenant_policy(mode=Mode.REQUIRED), user(enrolled={"totp"}), True, False),
    # An admin's reset: required, whatever the tenant's mode, even once a factor is back.
    (OPTIONAL_ALL, user(must_reenroll=True), True, False),
    (OPTIONAL_ALL, user(must_reenroll=True, enrolled={"totp"}), True, False),
    (OPTIONAL_ALL, user(admin_state=AdminState.ENFORCED, enrolled={"totp"}), True, False),
    (OPTIONAL_ALL, user(admin_state=AdminState.EXEMPT, enrolled={"totp"}), False, True),
    (CLICKHELP, user(role="member"), False, True),
    (tenant_policy(mode=Mode.DISABLED), user(enrolled={"totp"}), False, True),
])
def test_the_account_page_reads_the_standing(policy, facts, available, may_turn_off):
    shown = standing(policy, facts)
    assert (shown.available, shown.may_turn_off) == (available, may_turn_off), shown.reason
    assert shown.may_add == (tuple(t for t in ("webauthn", "totp", "email", "sms", "kba", "backup")
                                   if t in policy.allowed_factors) if available else ())
    if not available:
        assert shown.to_you and "this user" not in shown.reason_for_you  # said to the user


# --- What the console asks of an admin before they act. --------------------------------------

@pytest.mark.parametrize("policy,admin,level,factors", [
    # Klearcom (seed 000): questions only. The console asks a question, never an unreachable mfa.
    (KLEARCOM, user(role="admin"), "pwd", ("kba",)),
    (KLEARCOM, user(role="admin", enrolled={"kba"}), "pwd", ("kba",)),
    # A possession factor allowed: still mfa, even for an admin who holds only questions.
    (tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"totp", "kba"})),
     user(role="admin", enrolled={"kba"}), "mfa", ("totp",)),
    (tenant_policy(mode=Mode.OPTIONAL), user(role="admin"), "mfa", ("webauthn", "totp", "email", "sms", "backup")),
    # Backup codes cannot be set up first; an admin who holds some reaches mfa with them.
    (tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"kba", "backup"})),
     user(role="admin", enrolled={"backup"}), "mfa", ("backup",)),
    (tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"kba", "backup"})),
     user(role="admin"), "pwd", ("kba",)),
    # Nothing any admin could prove: the password only (the policy page says so first).
    (tenant_policy(mode=Mode.DISABLED), user(role="admin", enrolled={"totp"}), None, ()),
    (tenant_policy(mode=Mode.OPTIONAL, roles_allowed=frozenset({"member"})),
     user(role="admin"), None, ()),
    (tenant_policy(mode=Mode.REQUIRED, allowed_factors=frozenset({"backup"})), user(role="admin"), None, ()),
])
def test_what_the_console_asks_of_an_admin(policy, admin, level, factors):
    wanted = console_demand(policy, admin)
    assert (wanted.level, wanted.factors) == (level, factors), wanted.reason


def test_a_question_answered_opens_a_klearcom_console_and_a_password_alone_does_not():
    wanted = console_demand(KLEARCOM, user(role="admin", enrolled={"kba"}))
    assert wanted.met_by("pwd", ["pwd", "kba"])
    assert not wanted.met_by("pwd", ["pwd"])
    mfa = console_demand(tenant_policy(mode=Mode.OPTIONAL), user(role="admin", enrolled={"totp"}))
    assert mfa.met_by("mfa", ["pwd", "otp", "mfa"]) and not mfa.met_by("pwd", ["pwd", "kba"])


def test_the_consoles_step_up_in_a_klearcom_tenant_asks_a_question_whatever_the_scope():
    # Optional, and this admin never set questions up: the console has them set questions up
    # (no grace), then asks one; it never refuses with a level questions cannot reach.
    admin = user(role="admin")
    wanted = console_demand(KLEARCOM, admin)
    step_up = Requirements(client_min_acr=wanted.level, second_step=True)
    d = run(KLEARCOM, admin, req=step_up)
    assert (d.need, d.factors, d.skippable) == (Need.ENROLL, ("kba",), False)
    d = run(KLEARCOM, user(role="admin", enrolled={"kba"}), req=step_up)
    assert (d.need, d.factors) == (Need.CHALLENGE, ("kba",))
    assert run(KLEARCOM, user(role="admin", enrolled={"kba"}), Progress(methods=("pwd", "kba")),
               req=step_up).satisfied


def test_an_admin_holding_only_questions_sets_up_an_app_when_the_tenant_allows_one():
    policy = tenant_policy(mode=Mode.OPTIONAL, allowed_factors=frozenset({"totp", "kba"}))
    admin = user(role="admin", enrolled={"kba"})
    step_up = Requirements(client_min_acr=console_demand(policy, admin).level, second_step=True)
    assert run(policy, admin, req=step_up).factors == ("kba",)  # their own step first
    d = run(policy, admin, Progress(methods=("pwd", "kba")), req=step_up)
    assert (d.need, d.factors) == (Need.ENROLL, ("totp",))


# --- Words: reasons are read by people (issue 16, finding 8). ---------------------------------

LEVEL_NAMES = __import__("re").compile(r"\b(pwd|mfa|phr|level)\b")


@pytest.mark.parametrize("policy", [OPTIONAL_ALL, KLEARCOM,
                                    tenant_policy(mode=Mode.REQUIRED, grace_skips=2),
                                    tenant_policy(mode=Mode.REQUIRED,
                                                 allowed_factors=frozenset({"backup"}))])
@pytest.mark.parametrize("facts", [user(), user(enrolled={"totp"}), user(enrolled={"kba"}),
                                   user(must_reenroll=True), user(admin_state=AdminState.ENFORCED)])
@pytest.mark.parametrize("req", [Requirements(), Requirements(acr_values=("mfa",)),
                                 Requirements(client_min_acr="mfa"),
                                 Requirements(essential_acr=("phr",))])
def test_no_reason_names_a_level_and_the_person_is_you(policy, facts, req):
    d = run(policy, facts, PWD, req)
    assert not LEVEL_NAMES.search(d.reason), d.reason
    assert not LEVEL_NAMES.search(d.reason_for_you), d.reason_for_you
    assert "this user" not in d.reason and "this user" not in d.reason_for_you
    if d.need in (Need.ENROLL, Need.REFUSE):  # shown to the person on the setup or error page
        assert "this account" not in d.reason_for_you, d.reason_for_you


def test_the_consoles_refusal_speaks_of_a_second_step():
    """The console asks for mfa as a client floor; an admin with only questions is told what
    is missing in words, not as 'level mfa'."""
    d = run(KLEARCOM, user(role="admin", enrolled={"kba"}), Progress(methods=("pwd", "kba")),
            Requirements(client_min_acr="mfa"))
    assert d.need is Need.REFUSE
    assert "a second step, such as an authenticator app" in d.reason_for_you
