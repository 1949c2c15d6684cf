"""OpenID Connect and OAuth 2: Authlib server wiring, tokens, keys, discovery, endpoints."""
