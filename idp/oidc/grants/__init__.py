"""The token endpoint's grants, one module each, as Authlib names them (RFC 6749 4.1, 4.4, 6).

Authlib runs each grant's protocol; a module here supplies what the grant asks of us, and
what Authlib leaves to us: the single use of codes with revocation on replay (RFC 9700
4.2.4) and ``plain`` PKCE refused in ``authorization_code``, refresh-token rotation with
family revocation (RFC 9700 4.14.2) in ``refresh_token``, a service's scope in
``client_credentials``. The tokens they issue are ``idp.oidc.issue``'s.
"""
