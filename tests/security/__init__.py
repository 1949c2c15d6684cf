"""The security suite: one file per class of attack, each naming the published vulnerabilities
of peer identity providers (CVE numbers, or the public report where none was assigned) and the
review findings it guards against.

Every test here drives the product as an attacker would (hosted pages, protocol endpoints,
CLI) and failed on the code that had the hole.

| file | class | peers named | issue 15 |
|---|---|---|---|
| test_sign_in_binding.py | second factor planted with a password alone; consent finished under another session; grace skips raced; amr naming a method not used | Keycloak CVE-2023-3597 | findings 1, 2, 7, 8 |
| test_federation_trust.py | a broker vouching for more than the upstream proved; SSRF through OpenID metadata | keycloak/keycloak#25335, Keycloak CVE-2020-10770 (same class) | findings 3, 4 |
| test_address_spelling.py | user enumeration through another spelling of an address | Keycloak CVE-2026-4633, Django CVE-2019-19844 | finding 5 |
| test_captcha_race.py | brute-force limits overrun by simultaneous attempts | Keycloak CVE-2024-4629, CVE-2024-1722 | finding 6 |
| test_id_token_hint.py | JWT type confusion: an access token taken for an ID token | wso2/product-is#16895, thunder-id/thunderid#4990 | finding 9 |
| test_untrusted_input.py | uncontrolled recursion in JSON; CR/LF into headers | CVE-2020-36518 (class), CVE-2019-9740 (class) | finding 10 |
| test_file_permissions.py | secrets database created world-readable (CWE-276) | h44z/wg-portal#579 and others | finding 11 |
| test_login_links.py | magic-link takeover of privileged accounts | (class) | hardening |
| test_anonymous_state.py | login flow storage exhaustion by anonymous requests | (class) | hardening |
| test_review_probes.py | a second, adversarial pass over the fixes above | (each probe names its hole) | review |

Issue 16 added:

| file | class | peers named | issue 16 |
|---|---|---|---|
| test_session_proof.py | a session forgetting how its user first proved who they are | keycloak/keycloak#25335 | defect 2 |
| test_sms_resend.py | a rate limit keyed too broadly, denying the owner | OWASP ASVS V2.2 (class) | defect 4 |
| test_upstream_email.py | account takeover through an unverified upstream email | nOAuth (class), GitLab CVE-2022-1680 | defect 5 |

Issue 18 added:

| file | class | peers named | issue 18 |
|---|---|---|---|
| test_session_id_exposure.py | the SSO cookie's value handed to portals as the ID token's `sid` | CWE-200 (class) | found building the account page's browsers |
| test_deactivated_accounts.py | a deactivated account still getting in (refresh token, kept session, sign-in link, upstream) | goauthentik/authentik#12858, wso2-extensions/identity-inbound-auth-oauth#1385 | part 6 |
"""
