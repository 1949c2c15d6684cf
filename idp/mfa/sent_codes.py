"""Codes sent out of band (a text message, an email): what SMS and email codes share.

SP 800-63B section 5.1.3.2 (out-of-band authenticators): a random secret, short-lived,
accepted once, and rate limited because it is short. For each medium (``SentCodes``):

- ``new_code()``: ``digits`` digits from ``secrets``;
- only a keyed hash is kept (``keep``), in Redis, one pending code per (user, purpose) with a
  TTL; the hash binds the code to its purpose and destination, so a code sent to one number
  or address never confirms another;
- ``consume`` checks and spends it in one Lua script (compare, then delete, atomically): two
  parallel requests with the same code cannot both pass, and a wrong code leaves the pending
  one alone (wrong guesses are counted by the guard around the factor's check, not here);
- ``reserve`` throttles sends per user: ``per_hour`` an hour (a fixed window from the first
  send), whatever the purpose or destination; and a *resend* waits ``resend_wait`` seconds:
  while a code of the same purpose is pending and younger than that, no new one goes out. The
  first code of a new sign-in never waits: the code that set the factor up, or the last
  sign-in's, was spent, so there is nothing to wait for (issue 16).

Keys name the user by ``subject`` (random, never reused), not the row id, which a restored or
recreated database hands out again while Redis still holds the old counters. Every key of one
user and medium shares the hash tag ``{medium:SUBJECT}``, so the scripts touching two of them
also work on Redis Cluster (all keys of a script must live in one slot).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass

from redis import Redis
from werkzeug.datastructures import MultiDict

from flask_babel import gettext as _
from flask_babel import ngettext
from idp.mfa.base import NotNow, WrongAnswer
from idp.mfa.secrets import SecretBox

HOUR = 3600

# KEYS[1] the pending code (a hash: digest, to); ARGV[1] the digest of the typed code.
# 1: right (and now spent); 0: wrong (the pending code stays); -1: no code pending.
_CONSUME = """
local digest = redis.call('HGET', KEYS[1], 'digest')
if not digest then
  return -1
end
if digest == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
"""

# KEYS[1] the purpose's wait marker, KEYS[2] the hourly counter, KEYS[3] the purpose's pending
# code; ARGV: wait seconds, window seconds, sends per window.
# {0, n}: go ahead; {1, ttl}: too soon (a resend); {2, ttl}: too many this hour.
_THROTTLE = """
if redis.call('EXISTS', KEYS[3]) == 1 and redis.call('EXISTS', KEYS[1]) == 1 then
  return {1, redis.call('TTL', KEYS[1])}
end
redis.call('SET', KEYS[1], '1', 'EX', tonumber(ARGV[1]))
local sent = redis.call('INCR', KEYS[2])
if sent == 1 then
  redis.call('EXPIRE', KEYS[2], tonumber(ARGV[2]))
end
if sent > tonumber(ARGV[3]) then
  return {2, redis.call('TTL', KEYS[2])}
end
return {0, sent}
"""

# A send that failed gives its place back (both keys keep their TTL).
_REFUND = """
redis.call('DEL', KEYS[1])
if redis.call('EXISTS', KEYS[2]) == 1 then
  redis.call('DECR', KEYS[2])
end
return 1
"""


class Throttled(NotNow):
    """No code sent: one went out moments ago, or too many this hour."""


@dataclass(frozen=True)
class SentCodes:
    """The codes of one medium: ``medium`` names its keys and hashes ("sms", "email");
    ``wording``: what people read, naming what the code arrives in: "enter" (with
    ``%(digits)d``) and "wrong", lazy texts (``idp.mfa.sms``, ``idp.mfa.email_code``)."""

    medium: str
    wording: dict
    ttl: int  # seconds a code is valid (SP 800-63B 5.1.3.2 allows at most 10 minutes)
    resend_wait: int  # seconds before a pending code of one purpose is sent again
    per_hour: int  # sends per user per hour
    digits: int = 6

    # -- keys -----------------------------------------------------------------------------

    def code_key(self, subject: str, purpose: str) -> str:
        return f"{{{self.medium}:{subject}}}:code:{purpose}"

    def wait_key(self, subject: str, purpose: str) -> str:
        return f"{{{self.medium}:{subject}}}:wait:{purpose}"

    def hour_key(self, subject: str) -> str:
        return f"{{{self.medium}:{subject}}}:hour"

    # -- codes ----------------------------------------------------------------------------

    def new_code(self) -> str:
        return f"{secrets.randbelow(10 ** self.digits):0{self.digits}d}"

    def digest(self, box: SecretBox, purpose: str, to: str, code: str) -> str:
        return box.keyed_hash(f"{self.medium}-code", f"{purpose}\x00{to}\x00{code}")

    def typed(self, form: MultiDict) -> str:
        """The typed code without spaces or dashes; WrongAnswer unless exactly ``digits`` ASCII
        digits (``str.isdigit`` would take '²')."""
        code = re.sub(r"[\s-]", "", (form.get("code") or "")[:64])
        if not re.fullmatch(rf"[0-9]{{{self.digits}}}", code, flags=re.ASCII):
            raise WrongAnswer(str(self.wording["enter"]) % {"digits": self.digits})
        return code

    def reserve(self, store: Redis, subject: str, purpose: str) -> None:
        """Count a send now, or Throttled with when to ask again."""
        verdict, value = store.eval(_THROTTLE, 3, self.wait_key(subject, purpose),
                                    self.hour_key(subject), self.code_key(subject, purpose),
                                    self.resend_wait, HOUR, self.per_hour)
        if verdict == 1:
            seconds = max(int(value), 1)
            raise Throttled(ngettext("We sent a code a moment ago. You can ask for a new one in "
                                     "%(num)d second.",
                                     "We sent a code a moment ago. You can ask for a new one in "
                                     "%(num)d seconds.", seconds))
        if verdict == 2:
            minutes = max((int(value) + 59) // 60, 1)
            raise Throttled(ngettext("Too many codes were sent for this account in the last hour. "
                                     "Try again in %(num)d minute, or use another method.",
                                     "Too many codes were sent for this account in the last hour. "
                                     "Try again in %(num)d minutes, or use another method.",
                                     minutes))

    def refund(self, store: Redis, subject: str, purpose: str) -> None:
        """Give back a send ``reserve`` counted that did not happen."""
        store.eval(_REFUND, 2, self.wait_key(subject, purpose), self.hour_key(subject))

    def keep(self, store: Redis, subject: str, purpose: str, to: str, digest: str) -> None:
        """The code just sent becomes the pending one of ``purpose``, replacing any other."""
        key = self.code_key(subject, purpose)
        with store.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"digest": digest, "to": to})
            pipe.expire(key, self.ttl)
            pipe.execute()

    def pending_to(self, store: Redis, subject: str, purpose: str) -> str | None:
        """Where the pending code of ``purpose`` went, if one is pending."""
        return store.hget(self.code_key(subject, purpose), "to")

    def forget(self, store: Redis, subject: str, purpose: str) -> None:
        store.delete(self.code_key(subject, purpose))

    def consume(self, store: Redis, subject: str, purpose: str, digest: str) -> None:
        """Spend the pending code if ``digest`` is its; else WrongAnswer (NotNow if none)."""
        found = store.eval(_CONSUME, 1, self.code_key(subject, purpose), digest)
        if found == -1:
            raise NotNow(_("That code has expired or was used already. Send a new code."))
        if found != 1:
            raise WrongAnswer(str(self.wording["wrong"]))
