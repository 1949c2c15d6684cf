"""The console's words are translated on its pages only: outside a request (the CLI, a worker)
and on the admin API they stay English, as plain strings a JSON encoder takes."""

from __future__ import annotations

import json

from flask import Flask

from idp import i18n, roles
from idp.admin.user_list import MFA_CHOICES


def _app() -> Flask:
    app = Flask("console-i18n")
    i18n.init_app(app)
    return app


def test_outside_a_request_the_words_are_english_strings():
    app = _app()
    with app.app_context():  # as the CLI and the webhook worker run
        assert roles.label(roles.MFA_ADMIN) == "Two-factor administrator"
        assert json.dumps({"role": roles.label(roles.ADMIN)}) == '{"role": "Administrator"}'
        assert str(MFA_CHOICES["off"]) == "Off or not set up"


def test_on_a_german_page_they_are_german_and_on_the_api_english():
    app = _app()
    with app.test_request_context("/t/acme/admin/users", headers={"Accept-Language": "de"}):
        assert roles.label(roles.MFA_ADMIN) == "Zwei-Faktor-Administrator"
        assert str(MFA_CHOICES["off"]) == "Aus oder nicht eingerichtet"
    with app.test_request_context("/t/acme/api/v1/users", headers={"Accept-Language": "de"}):
        assert roles.label(roles.MFA_ADMIN) == "Two-factor administrator"
