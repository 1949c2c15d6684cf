"""What a factor type must provide, and that the registry is the one place the rest of idp learns
it from: a factor is its class in ``idp/mfa/`` and its two pages in ``templates/mfa/<type>/``.
tests/integration/test_factor_new_type.py adds a type that way and signs in with it."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest
from flask_babel.speaklater import LazyString

import idp.mfa
from idp import mfa
from idp.mfa.base import Factor
from idp.policy import KIND, LEVELS, FactorKind

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "mfa"
FACTORS = mfa.ordered()

# A factor's facts: its class attributes, with their types. The policy, the console, the
# account page and the journey read nothing else about a type. What people read is
# translated: a lazy text, read in the page's language.
TEXT = (str, LazyString)
FACTS = {"type": str, "label": TEXT, "in_sentence": TEXT, "policy_help": TEXT, "amr": str,
         "rank": int, "several": bool, "challengeable": bool, "recovery": bool}
# The steps of its ceremonies (``idp.mfa.base``), and what it may refine.
STEPS = ("enroll_begin", "enroll_finish", "challenge_begin", "verify")
REFINED = ("usable", "usable_where", "proved_by_enrollment", "describe")
PAGES = ("enroll.html", "challenge.html")


def test_every_factor_class_in_idp_mfa_is_registered():
    """A module with a factor class in it and not in ``idp/mfa/__init__.py``'s import line
    would be a type nobody can use: the line is the one to add, and this says so."""
    found = []
    for module in pkgutil.iter_modules(idp.mfa.__path__):
        loaded = importlib.import_module(f"idp.mfa.{module.name}")
        found += [cls for _, cls in inspect.getmembers(loaded, inspect.isclass)
                  if issubclass(cls, Factor) and not inspect.isabstract(cls)
                  and cls.__module__ == loaded.__name__]
    assert found and {cls.type for cls in found} == set(mfa.REGISTRY)
    assert all(type(mfa.get(cls.type)) is cls for cls in found)


@pytest.mark.parametrize("factor", FACTORS, ids=[f.type for f in FACTORS])
def test_a_factor_states_its_facts(factor):
    for name, kind in FACTS.items():
        assert isinstance(getattr(factor, name), kind), name
    assert factor.type.isidentifier() and factor.type.islower()
    assert factor.label and factor.policy_help
    # The amr value is one whose kind we know, so the level it reaches is known too.
    assert factor.amr in KIND and KIND[factor.amr] in ("knowledge", "possession", "inherence")
    assert factor.alias is None or (factor.alias.isidentifier() and mfa.named(factor.alias) is factor)


@pytest.mark.parametrize("factor", FACTORS, ids=[f.type for f in FACTORS])
def test_a_factor_has_its_steps_and_its_pages(factor):
    for step in STEPS:
        assert getattr(type(factor), step) is not getattr(Factor, step), step
    for name in REFINED:
        assert callable(getattr(factor, name)), name
    for page in PAGES:
        assert (TEMPLATES / factor.type / page).is_file(), f"templates/mfa/{factor.type}/{page}"


def test_types_ranks_and_names_are_unique_and_recovery_is_never_all():
    names = [f.type for f in FACTORS] + [f.alias for f in FACTORS if f.alias]
    assert len(set(names)) == len(names)
    assert len({f.rank for f in FACTORS}) == len(FACTORS)
    assert any(not f.recovery for f in FACTORS)  # something can always be set up first


def test_the_policy_decides_with_what_the_classes_say():
    kinds = mfa.kinds()
    assert kinds.kinds == tuple(FactorKind(f.type, f.amr, f.rank, f.recovery, f.via_mailbox)
                                for f in FACTORS)
    assert kinds.types == tuple(mfa.types())
    for kind in kinds.kinds:
        assert kind.level in LEVELS
    # As DESIGN.md's claims table says: questions stay at pwd, a passkey is phishing-resistant.
    levels = {k.type: k.level for k in kinds.kinds}
    assert levels == {"webauthn": "phr", "totp": "mfa", "email": "mfa", "sms": "mfa", "kba": "pwd",
                      "backup": "mfa"}
    assert [k.type for k in kinds.kinds if k.recovery] == ["backup"]
    assert [k.type for k in kinds.kinds if k.via_mailbox] == ["email"]


def test_admins_may_name_a_type_by_its_alias():
    assert mfa.named("questions") is mfa.get("kba") and mfa.named("kba") is mfa.get("kba")
    assert mfa.named("nonsense") is None
