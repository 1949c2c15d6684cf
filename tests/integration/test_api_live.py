"""The admin API over HTTP against ``idp serve``, as a back office calls it: a token from the
client credentials grant (Authlib's OAuth2Session), the document validated as OpenAPI 3.1,
every operation refusing what it must (no token, a token without the scope, another tenant's
token, another tenant's ids), and Schemathesis fuzzing every operation from the served
document: never a 5xx, every answer as documented, authentication enforced."""

from __future__ import annotations

import re

import pytest
import requests
import schemathesis
from schemathesis import GenerationMode
from authlib.integrations.requests_client import OAuth2Session
from hypothesis import HealthCheck, Phase, given, settings as hypothesis_settings
from hypothesis import strategies as st
from openapi_spec_validator import validate
from schemathesis.specs.openapi import checks

from tests.support.api import ALL_SCOPES, grant_scopes, subject_of
from tests.support.world import make_world


def service_token(world, scope: str = ALL_SCOPES) -> str:
    session = OAuth2Session(world.service.client_id, world.service.client_secret, scope=scope)
    return session.fetch_token(f"{world.issuer}/token", grant_type="client_credentials")[
        "access_token"]


def _call(method: str, url: str, token: str | None, **kw) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.request(method, url, headers=headers, timeout=10, **kw)


@pytest.fixture
def two_tenants(app, settings, live_server):
    """Two tenants on the live server, each with a service holding every API scope."""
    ours, theirs = (make_world(app, settings, base_url=live_server.url) for _ in range(2))
    for world in (ours, theirs):
        grant_scopes(app, world)
    return ours, theirs


def _document(world) -> dict:
    r = requests.get(f"{world.issuer}/api/v1/openapi.json", timeout=10)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("application/json")
    return r.json()


def _operations(doc: dict):
    for path, operations in doc["paths"].items():
        for method, operation in operations.items():
            yield method.upper(), path, operation


def test_the_document_is_valid_openapi_3_1_for_this_tenant(two_tenants):
    ours, _ = two_tenants
    doc = _document(ours)
    validate(doc)  # openapi-spec-validator: raises on anything wrong
    assert doc["openapi"].startswith("3.1") and doc["servers"] == [{"url": f"{ours.issuer}/api/v1"}]
    flow = doc["components"]["securitySchemes"]["oauth2"]["flows"]["clientCredentials"]
    assert flow["tokenUrl"] == f"{ours.issuer}/token"
    assert set(flow["scopes"]) == set(ALL_SCOPES.split())
    operations = list(_operations(doc))
    assert len(operations) >= 30
    for method, path, operation in operations:
        [requirement] = operation["security"]
        assert requirement["oauth2"], (method, path)
        assert "application/problem+json" in operation["responses"]["401"]["content"]
    scopes = {(m, p): o["security"][0]["oauth2"] for m, p, o in operations}
    assert scopes[("GET", "/users")] == ["admin:read"]
    assert scopes[("POST", "/users")] == ["users:provision"]
    assert scopes[("POST", "/users/{user_id}/mfa/reset")] == ["mfa:manage"]
    assert scopes[("PUT", "/policy")] == ["admin:write"]
    keyed = {(m, p) for m, p, o in operations
             if any(x["name"] == "Idempotency-Key" for x in o["parameters"])}
    assert keyed == {("POST", "/users"), ("POST", "/groups"), ("POST", "/clients")}


def _filled(path: str, ids: dict) -> str:
    return re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)


def _ids(app, world, token: str) -> dict:
    """Real ids of ``world``'s resources, one of each kind a path names."""
    base = f"{world.issuer}/api/v1"
    group = _call("POST", f"{base}/groups", token, json={"name": "Isolated"}).json()
    sessions_of = subject_of(app, world, world.bob)
    registration_token = _call("POST", f"{base}/registration-tokens", token,
                               json={"name": "Isolated"}).json()
    return {"user_id": sessions_of, "group_id": str(group["id"]),
            "client_id": world.portal.client_id, "session_id": "s" * 43,
            "token_id": registration_token["id"]}


def test_no_token_a_token_without_the_scope_and_another_tenant_s_token_are_refused(
        app, two_tenants):
    ours, theirs = two_tenants
    our_token, their_token = service_token(ours), service_token(theirs)
    ids = _ids(app, ours, our_token)
    grant_scopes(app, ours, "admin:read")
    reader = service_token(ours, "admin:read")
    checked = 0
    for method, path, operation in _operations(_document(ours)):
        url = f"{ours.issuer}/api/v1{_filled(path, ids)}"
        body = {} if "requestBody" in operation else None
        r = _call(method, url, None, json=body)
        assert r.status_code == 401, (method, path, r.text)
        assert r.headers["Content-Type"] == "application/problem+json"
        assert r.headers["WWW-Authenticate"].startswith("Bearer realm=")
        r = _call(method, url, their_token, json=body)
        assert r.status_code == 401 and 'error="invalid_token"' in r.headers["WWW-Authenticate"], (
            method, path)
        needed = operation["security"][0]["oauth2"]
        if needed != ["admin:read"]:
            r = _call(method, url, reader, json=body)
            assert r.status_code == 403, (method, path, r.status_code)
            assert 'error="insufficient_scope"' in r.headers["WWW-Authenticate"]
            assert r.json()["status"] == 403
        checked += 1
    assert checked >= 30


def test_another_tenant_s_ids_are_not_found_here(app, two_tenants):
    ours, theirs = two_tenants
    their_ids = _ids(app, theirs, service_token(theirs))
    token = service_token(ours)
    for method, path, operation in _operations(_document(ours)):
        if "{" not in path:
            continue
        ids = dict(their_ids)
        if "{session_id}" in path:  # a session is looked up under its user: theirs is 404
            ids["session_id"] = "s" * 43
        url = f"{ours.issuer}/api/v1{_filled(path, ids)}"
        r = _call(method, url, token, json={} if "requestBody" in operation else None)
        assert r.status_code == 404, (method, path, r.status_code, r.text)
        assert r.json()["status"] == 404
    # And nothing of theirs changed: their user is still there, as they were.
    their = service_token(theirs)
    r = _call("GET", f"{theirs.issuer}/api/v1/users/{their_ids['user_id']}", their)
    assert r.status_code == 200 and r.json()["status"] == "active"
    assert r.json()["mfa"]["admin_state"] == "default"


# -- Schemathesis ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fuzzed(app, settings, live_server):
    """A tenant for the fuzzer, its service's token, the schema as served, and ids of real
    resources of that tenant (a user, a group, a portal) for the path parameters."""
    world = make_world(app, settings, base_url=live_server.url)
    grant_scopes(app, world)
    token = service_token(world)
    group = _call("POST", f"{world.issuer}/api/v1/groups", token, json={"name": "Fuzzed"}).json()
    real = {"user_id": subject_of(app, world, world.bob), "group_id": str(group["id"]),
            "client_id": world.portal.client_id}
    loaded = schemathesis.openapi.from_url(f"{world.issuer}/api/v1/openapi.json")
    return loaded, token, real


CHECKS = [checks.status_code_conformance, checks.content_type_conformance,
          checks.response_headers_conformance, checks.response_schema_conformance,
          checks.ignored_auth]


def _with_real_ids(real: dict):
    """Half the cases name the tenant's real resources, so the handlers behind the 404 run
    with the generated queries and bodies too."""
    def choose(pair):
        case, use_real = pair
        if use_real:
            for name in case.path_parameters:
                if name in real:
                    case.path_parameters[name] = real[name]
        return case
    return choose


def test_fuzzed_requests_are_answered_as_documented(fuzzed):
    """Every operation, a bounded number of generated requests each, valid ones and ones its
    models must refuse; Hypothesis shrinks a failure to its smallest request."""
    loaded, token, real = fuzzed
    operations = [result.ok() for result in loaded.get_all_operations()]
    assert len(operations) >= 30
    runs = dict.fromkeys(GenerationMode, 0)
    for operation in operations:
        raw = operation.definition.raw
        negatable = "requestBody" in raw or any(p.get("in") == "query"
                                                for p in raw.get("parameters", []))
        modes = (GenerationMode.POSITIVE, GenerationMode.NEGATIVE) if negatable else (
            GenerationMode.POSITIVE,)
        for mode in modes:
            cases = st.tuples(operation.as_strategy(generation_mode=mode), st.booleans())

            @given(case=cases.map(_with_real_ids(real)))
            @hypothesis_settings(max_examples=10, deadline=None, derandomize=True,
                                 database=None, phases=[Phase.explicit, Phase.generate],
                                 suppress_health_check=list(HealthCheck))
            def answered_as_documented(case):
                response = case.call_and_validate(
                    headers={"Authorization": f"Bearer {token}"}, checks=CHECKS)
                assert response.status_code < 500, response.text

            answered_as_documented()
            runs[mode] += 1
    # Valid requests for every operation; invalid ones wherever a query or a body can be.
    assert runs[GenerationMode.POSITIVE] == len(operations)
    assert runs[GenerationMode.NEGATIVE] >= 9
