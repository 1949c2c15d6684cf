"""Phone numbers for SMS tests: a valid mobile number of its own for each test (the outbox is
shared by all tenants)."""

from __future__ import annotations

import secrets

import phonenumbers


def new_mobile(prefix: str = "+336", digits: int = 8) -> str:
    while True:
        number = prefix + "".join(secrets.choice("0123456789") for _ in range(digits))
        parsed = phonenumbers.parse(number, None)
        if (phonenumbers.is_valid_number(parsed)
                and phonenumbers.number_type(parsed) == phonenumbers.PhoneNumberType.MOBILE):
            return number
