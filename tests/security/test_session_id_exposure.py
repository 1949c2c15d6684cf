"""The SSO session's id is the browser's credential: nothing we hand out may carry it.

Class: a session identifier exposed to third parties (CWE-200, OWASP ASVS 5 V7.2: session
tokens never in URLs or to other parties). Issue 18 found it while giving the account page its
list of browsers: the ID token's ``sid`` claim (OIDC Front-Channel Logout 3) was the SSO
cookie's value itself. Every portal of the tenant receives the ID token (a public client in
the browser's JavaScript; a sign-out link carries it in a URL as ``id_token_hint``), so whoever
read one could set the cookie and be that user at the identity provider: get codes for the
other portals, open the account page. The claim is now a one-way digest of the id.
"""

from __future__ import annotations

from idp.journey import session as sso
from tests.support.journey import query
from tests.support.rp import get_code, jwt_claims, params_for, redeem


def test_the_id_tokens_sid_does_not_open_the_users_session(app, client, world):
    code, verifier = get_code(client, world, world.portal)
    id_token = redeem(client, world, world.portal, code, verifier).get_json()["id_token"]
    sid = jwt_claims(id_token)["sid"]
    assert sid and sid != client.get_cookie(sso.COOKIE, path=f"/t/{world.slug}/").value

    # Whoever holds the ID token (a portal, a log of sign-out URLs) tries its sid as the cookie.
    thief = app.test_client()
    thief.set_cookie(sso.COOKIE, sid, path=f"/t/{world.slug}/")
    account = thief.get(f"/t/{world.slug}/account")
    assert account.status_code == 302 and "/login" in account.headers["Location"]
    silent = thief.get(f"/t/{world.slug}/authorize", query_string=params_for(world.spa, prompt="none"))
    assert query(silent.headers["Location"]).get("error") == "login_required"
