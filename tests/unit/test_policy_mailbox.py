"""After a link mailed to the account (a reset, an invitation), a second step delivered to that
same mailbox (codes by email) proves nothing more: another is asked for where the account
has one, and set up where it must set one up."""

from __future__ import annotations

from datetime import datetime, timezone

from idp.policy import Mode, Need, Primary, Progress, Requirements, TenantPolicy, UserFacts, decide
from tests.support.policy import KINDS

NOW = datetime(2026, 12, 1, tzinfo=timezone.utc)
EVERY = frozenset(KINDS.types)
REQUIRED = TenantPolicy(mode=Mode.REQUIRED, allowed_factors=EVERY)
RESET = Progress(Primary.PASSWORD, ("pwd",), mailbox_proved=True)
TYPED = Progress(Primary.PASSWORD, ("pwd",))


def user(*enrolled: str) -> UserFacts:
    return UserFacts(1, KINDS, enrolled=frozenset(enrolled))


def test_after_a_reset_the_mailed_code_is_not_offered_beside_another_factor():
    typed = decide(REQUIRED, user("totp", "email"), Requirements(), TYPED, NOW)
    assert typed.need is Need.CHALLENGE and set(typed.factors) == {"totp", "email"}
    reset = decide(REQUIRED, user("totp", "email"), Requirements(), RESET, NOW)
    assert reset.need is Need.CHALLENGE and reset.factors == ("totp",)


def test_an_account_holding_only_codes_by_email_is_still_asked_for_one():
    """Nothing else to ask for: never a setup instead (a password alone would then plant a
    factor), and such an account is as strong as its mailbox (README)."""
    reset = decide(REQUIRED, user("email"), Requirements(), RESET, NOW)
    assert reset.need is Need.CHALLENGE and reset.factors == ("email",)


def test_an_invitation_sets_up_something_other_than_codes_by_email():
    invited = decide(REQUIRED, user(), Requirements(), RESET, NOW)
    assert invited.need is Need.ENROLL and "email" not in invited.factors and invited.factors
    only_email = TenantPolicy(mode=Mode.REQUIRED, allowed_factors=frozenset({"email"}))
    assert decide(only_email, user(), Requirements(), RESET, NOW).factors == ("email",)
