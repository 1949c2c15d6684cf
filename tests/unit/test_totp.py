"""The TOTP factor on its own: a FactorContext with a controlled clock, a SecretBox and the
store of the backend under test (Redis when IDP_TEST_REDIS_URL is set, else fakeredis)."""

from __future__ import annotations

import json
import os
import secrets
import threading
from types import SimpleNamespace
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
import pytest
from werkzeug.datastructures import MultiDict

from idp import mfa, store
from idp.config import Settings
from idp.mfa.base import FactorContext, NotNow, Proof, WrongAnswer
from idp.mfa.secrets import SecretBox
from idp.mfa.totp import Totp, setup_key

T0 = 1_700_000_010.0  # 10 s into a 30-second step
STEP = 30


@pytest.fixture(scope="module")
def redis_store():
    return store.connect(Settings(redis_url=os.environ.get("IDP_TEST_REDIS_URL") or None))


@pytest.fixture
def box():
    return SecretBox(secrets.token_hex(32))


class Clock:
    def __init__(self, now: float):
        self.now = now


@pytest.fixture
def clock():
    return Clock(T0)


@pytest.fixture
def make_ctx(redis_store, box, clock):
    events: list[tuple[str, dict]] = []

    def make(now: float | None = None) -> FactorContext:
        ctx = FactorContext(db=None, store=redis_store, settings=None, box=box,
                            tenant=SimpleNamespace(id=1, name="Acme: Payroll"),
                            user=SimpleNamespace(id=7, email="alice@example.com"),
                            now=clock.now if now is None else now)
        ctx.audit = lambda action, **data: events.append((action, data))  # no database here
        return ctx

    make.events = events
    return make


@pytest.fixture
def totp() -> Totp:
    return mfa.get("totp")


def enroll(totp, make_ctx, clock, name: str = "") -> tuple[str, object]:
    """(secret, authenticator) after a confirmed enrollment at ``clock.now``."""
    ctx = make_ctx()
    step = totp.enroll_begin(ctx)
    secret = step.context["setup_key"].replace(" ", "")
    auth = totp.enroll_finish(ctx, step.state, MultiDict({"name": name, "code": code(secret, clock.now)}))
    auth.id = secrets.randbelow(10**9)
    return secret, auth


def code(secret: str, moment: float) -> str:
    return pyotp.TOTP(secret).at(moment)


def answer(totp, make_ctx, auths, value: str, now: float | None = None):
    return totp.verify(make_ctx(now), list(auths), {}, MultiDict({"code": value}))


def test_registered_with_its_claims(totp):
    assert isinstance(totp, Totp)
    assert (totp.type, totp.amr, totp.rank, totp.label) == ("totp", "otp", 20, "Authenticator app")
    assert totp.several


def test_enrollment_page_has_uri_qr_and_grouped_key(totp, make_ctx):
    step = totp.enroll_begin(make_ctx())
    uri = urlsplit(step.context["uri"])
    params = {k: v[0] for k, v in parse_qs(uri.query).items()}
    assert uri.scheme == "otpauth" and uri.netloc == "totp"
    # The colon separates issuer and account in the label, so it is kept out of both.
    assert unquote(uri.path) == "/Acme Payroll:alice@example.com"
    assert params["issuer"] == "Acme Payroll"
    assert params["digits"] == "6" and params["period"] == "30" and params["algorithm"] == "SHA1"
    secret = params["secret"]
    assert len(secret) == 32  # 160 bits (RFC 4226 R6)
    assert step.context["setup_key"] == " ".join(secret[i:i + 4] for i in range(0, 32, 4))
    assert step.context["qr_svg"].startswith("<svg") and "<path" in step.context["qr_svg"]
    # The state goes to Redis: the seed only encrypted there.
    assert secret not in json.dumps(step.state)
    assert make_ctx().box.decrypt(step.state["secret"]) == secret


def test_setup_key_groups_in_fours():
    assert setup_key("ABCDEFGHIJKLMNOP") == "ABCD EFGH IJKL MNOP"
    assert setup_key("ABCDEF") == "ABCD EF"


def test_enrollment_needs_a_valid_code_and_keeps_the_seed_encrypted(totp, make_ctx, clock):
    ctx = make_ctx()
    step = totp.enroll_begin(ctx)
    secret = step.context["setup_key"].replace(" ", "")
    wrong = str((int(code(secret, clock.now)) + 1) % 10**6).zfill(6)
    with pytest.raises(WrongAnswer):
        totp.enroll_finish(ctx, step.state, MultiDict({"code": wrong}))
    auth = totp.enroll_finish(ctx, step.state, MultiDict({"name": "  Work   phone ",
                                                          "code": code(secret, clock.now)}))
    assert auth.type == "totp" and auth.name == "Work phone"
    assert secret not in json.dumps(auth.data)
    assert ctx.box.decrypt(auth.data["secret"]) == secret


def test_enrollment_name_defaults_and_is_limited(totp, make_ctx, clock):
    _, auth = enroll(totp, make_ctx, clock)
    assert auth.name == "Authenticator app"
    ctx = make_ctx()
    step = totp.enroll_begin(ctx)
    secret = step.context["setup_key"].replace(" ", "")
    with pytest.raises(NotNow):
        totp.enroll_finish(ctx, step.state, MultiDict({"name": "x" * 101, "code": code(secret, clock.now)}))


@pytest.mark.parametrize("offset, accepted", [(-2, False), (-1, True), (0, True), (1, True), (2, False)])
def test_window_is_one_step_either_side(totp, make_ctx, clock, offset, accepted):
    secret, auth = enroll(totp, make_ctx, clock)
    later = clock.now + 10 * STEP  # well after the enrollment's code
    value = code(secret, later + offset * STEP)
    if accepted:
        assert isinstance(answer(totp, make_ctx, [auth], value, later), Proof)
    else:
        with pytest.raises(WrongAnswer, match="not right"):
            answer(totp, make_ctx, [auth], value, later)


@pytest.mark.parametrize("into_step", [0, 29.999])
def test_window_edges_at_both_ends_of_a_step(totp, make_ctx, clock, into_step):
    secret, auth = enroll(totp, make_ctx, clock)
    now = (int(clock.now // STEP) + 10) * STEP + into_step
    with pytest.raises(WrongAnswer):
        answer(totp, make_ctx, [auth], code(secret, now + 2 * STEP), now)
    with pytest.raises(WrongAnswer):
        answer(totp, make_ctx, [auth], code(secret, now - 2 * STEP), now)
    assert isinstance(answer(totp, make_ctx, [auth], code(secret, now - STEP), now), Proof)
    assert isinstance(answer(totp, make_ctx, [auth], code(secret, now + STEP), now), Proof)


def test_window_is_configurable(make_ctx, clock):
    class Wide(Totp):
        WINDOW = 2

    wide = Wide()
    secret, auth = enroll(wide, make_ctx, clock)
    later = clock.now + 10 * STEP
    assert isinstance(answer(wide, make_ctx, [auth], code(secret, later + 2 * STEP), later), Proof)
    assert wide.ttl() > 5 * STEP  # the used-step key outlives the wider window


def test_a_code_is_accepted_once(totp, make_ctx, clock):
    secret, auth = enroll(totp, make_ctx, clock)
    later = clock.now + 5 * STEP
    value = code(secret, later)
    assert isinstance(answer(totp, make_ctx, [auth], value, later), Proof)
    with pytest.raises(WrongAnswer, match="used already"):
        answer(totp, make_ctx, [auth], value, later + 1)
    assert ("mfa.totp_replay_refused", {"authenticator_id": auth.id}) in make_ctx.events
    # The next step's code is fine.
    assert isinstance(answer(totp, make_ctx, [auth], code(secret, later + STEP), later + STEP), Proof)


def test_the_enrollment_code_cannot_be_replayed_at_sign_in(totp, make_ctx, clock):
    ctx = make_ctx()
    step = totp.enroll_begin(ctx)
    secret = step.context["setup_key"].replace(" ", "")
    value = code(secret, clock.now)
    auth = totp.enroll_finish(ctx, step.state, MultiDict({"code": value}))
    with pytest.raises(WrongAnswer, match="used already"):
        answer(totp, make_ctx, [auth], value, clock.now + 5)


def test_the_last_used_step_only_moves_forward(totp, make_ctx, clock):
    secret, auth = enroll(totp, make_ctx, clock)
    now = clock.now + 10 * STEP
    # A code from the next step (a phone clock a little ahead) is accepted...
    assert isinstance(answer(totp, make_ctx, [auth], code(secret, now + STEP), now), Proof)
    # ...after which the current and previous steps' codes are refused, though in the window.
    for earlier in (now, now - STEP):
        with pytest.raises(WrongAnswer, match="used already"):
            answer(totp, make_ctx, [auth], code(secret, earlier), now)
    # Time passes: the step after it works.
    assert isinstance(answer(totp, make_ctx, [auth], code(secret, now + 2 * STEP), now + STEP), Proof)


def test_the_used_step_is_kept_in_the_store_with_a_ttl(totp, make_ctx, clock, redis_store):
    _, auth = enroll(totp, make_ctx, clock)
    key = totp.used_key(auth.data["handle"])
    assert int(redis_store.get(key)) == int(clock.now // STEP)
    assert 0 < redis_store.ttl(key) <= totp.ttl()
    assert totp.ttl() >= 3 * STEP  # longer than the whole window


@pytest.mark.parametrize("typed", ["", "12345", "1234567", "12a456", "abcdef", "１２３４５６",
                                   "²²²²²²", "123456" * 1000, "-12345", "12 34 5"])
def test_malformed_input_is_a_wrong_answer(totp, make_ctx, clock, typed):
    _, auth = enroll(totp, make_ctx, clock)
    with pytest.raises(WrongAnswer):
        answer(totp, make_ctx, [auth], typed)


def test_spaces_as_apps_show_them_are_ignored(totp, make_ctx, clock):
    secret, auth = enroll(totp, make_ctx, clock)
    now = clock.now + STEP
    value = code(secret, now)
    assert isinstance(answer(totp, make_ctx, [auth], f" {value[:3]} {value[3:]} ", now), Proof)


def test_several_apps_each_one_works(totp, make_ctx, clock):
    secret_a, phone = enroll(totp, make_ctx, clock, "Phone")
    secret_b, tablet = enroll(totp, make_ctx, clock, "Tablet")
    now = clock.now + 3 * STEP
    proof = answer(totp, make_ctx, [phone, tablet], code(secret_b, now), now)
    assert proof.authenticator is tablet and proof.methods == ["otp"]
    # Each app has its own last step: using the tablet did not spend the phone's step.
    proof = answer(totp, make_ctx, [phone, tablet], code(secret_a, now), now)
    assert proof.authenticator is phone
    assert totp.challenge_begin(make_ctx(), [phone, tablet]).context["names"] == ["Phone", "Tablet"]


def test_a_seed_sealed_under_another_key_is_skipped_not_a_crash(totp, make_ctx, clock):
    secret, auth = enroll(totp, make_ctx, clock)
    stale = SimpleNamespace(id=1, name="Old", data={"secret": SecretBox("other" * 8).encrypt(secret),
                                                     "handle": "x"})
    now = clock.now + STEP
    with pytest.raises(WrongAnswer):
        answer(totp, make_ctx, [stale], code(secret, now), now)
    assert isinstance(answer(totp, make_ctx, [stale, auth], code(secret, now), now), Proof)


def test_two_threads_racing_with_one_code_pass_once(totp, make_ctx, clock):
    secret, auth = enroll(totp, make_ctx, clock)
    now = clock.now + 4 * STEP
    value = code(secret, now)
    contexts = [make_ctx(now) for _ in range(8)]
    barrier = threading.Barrier(len(contexts))
    outcomes: list[str] = []

    def attempt(ctx):
        barrier.wait()
        try:
            totp.verify(ctx, [auth], {}, MultiDict({"code": value}))
            outcomes.append("accepted")
        except WrongAnswer:
            outcomes.append("refused")

    threads = [threading.Thread(target=attempt, args=(c,)) for c in contexts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["accepted"] + ["refused"] * 7
