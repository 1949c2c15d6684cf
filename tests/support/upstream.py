"""A scripted upstream OpenID provider on a real socket, and a listener that records who calls.

``ScriptedProvider`` is what our own provider will not be: it says ``email_verified: true``,
sends whatever ``amr``/``acr`` a test scripts, tampers with its signature, or publishes a
discovery document that points elsewhere. It checks our PKCE verifier like any provider would.
With ``tls=True`` it serves https under a throw-away certificate authority (``ca_file``), which
the process fetching from it must trust (``REQUESTS_CA_BUNDLE``).

``Recorder`` answers anything and remembers every request: where a discovery document must not
send us, a test asserts that it received nothing.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import urlencode

from flask import Flask, jsonify, redirect
from flask import request as flask_request
from joserfc import jwt
from joserfc.jwk import RSAKey
from werkzeug.serving import make_server

from tests.support.tls import self_signed


def s256(verifier: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()


def flip_signature(token: str) -> str:
    """The same token with one character in the middle of its signature changed."""
    head, body, sig = token.split(".")
    i = len(sig) // 2
    return ".".join([head, body, sig[:i] + ("A" if sig[i] != "A" else "B") + sig[i + 1:]])


class _Served:
    """A Flask app on a loopback socket in a daemon thread (https with ``tls``)."""

    def _serve(self, app: Flask, tls: tuple[Path, Path] | None = None) -> None:
        ssl_context = (str(tls[0]), str(tls[1])) if tls else None
        self._server = make_server("127.0.0.1", 0, app, threaded=True, ssl_context=ssl_context)
        self.url = f"{'https' if tls else 'http'}://127.0.0.1:{self._server.server_port}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


class Recorder(_Served):
    """Answers every request with an empty JSON object and keeps (method, path, body) of each."""

    def __init__(self):
        self.requests: list[tuple[str, str, str]] = []
        app = Flask("recorder")

        @app.route("/", defaults={"path": ""}, methods=["GET", "POST"])
        @app.route("/<path:path>", methods=["GET", "POST"])
        def anything(path):
            self.requests.append((flask_request.method, f"/{path}",
                                  flask_request.get_data(as_text=True)))
            return jsonify({})

        self._serve(app)


class ScriptedProvider(_Served):
    """A minimal OpenID provider; each test scripts its next ID token (and, if it likes, what
    its discovery document says in ``discovery_changes``)."""

    def __init__(self, tls: bool = False):
        self.key = RSAKey.generate_key(2048, parameters={"kid": "scripted-1", "use": "sig"})
        self.client_id = f"downstream-{secrets.token_hex(4)}"
        self.client_secret = secrets.token_urlsafe(24)
        self.ca_file: Path | None = None
        self.reset()
        app = Flask("scripted-upstream")
        app.add_url_rule("/.well-known/openid-configuration", view_func=self.discovery)
        app.add_url_rule("/jwks", view_func=self.jwks)
        app.add_url_rule("/authorize", view_func=self.authorize)
        app.add_url_rule("/token", view_func=self.token, methods=["POST"])
        app.add_url_rule("/userinfo", view_func=self.userinfo_endpoint)
        certificate = None
        if tls:
            certificate = self_signed(Path(tempfile.mkdtemp(prefix="scripted-tls-")),
                                      "scripted upstream")
            self.ca_file = certificate[0]
        self._serve(app, certificate)
        self.issuer = self.url

    def reset(self):
        self.subject = f"scripted-{secrets.token_hex(6)}"
        self.claims: dict = {}  # added to (or, with None, removed from) the next ID token
        # What its userinfo endpoint says besides ``sub`` (None: it publishes no userinfo).
        self.userinfo: dict | None = None
        self.userinfo_requests = 0
        self._access_tokens: set[str] = set()
        self.discovery_changes: dict = {}
        self.tamper = False
        self.token_redirect: str | None = None  # the token endpoint answers 307 to there
        self.authorization_requests: list[dict] = []
        self.token_requests: list[dict] = []
        self._codes: dict[str, dict] = {}

    def discovery(self):
        base = self.issuer
        doc = {
            "issuer": base, "authorization_endpoint": f"{base}/authorize",
            "token_endpoint": f"{base}/token", "jwks_uri": f"{base}/jwks",
            "response_types_supported": ["code"], "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "code_challenge_methods_supported": ["S256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic"],
            "authorization_response_iss_parameter_supported": True,
        }
        if self.userinfo is not None:
            doc["userinfo_endpoint"] = f"{base}/userinfo"
        doc.update(self.discovery_changes)
        return jsonify(doc)

    def jwks(self):
        return jsonify({"keys": [self.key.as_dict(private=False)]})

    def authorize(self):
        args = flask_request.args.to_dict()
        self.authorization_requests.append(args)
        code = secrets.token_urlsafe(16)
        self._codes[code] = args
        return redirect(f"{args['redirect_uri']}?" + urlencode(
            {"code": code, "state": args.get("state", ""), "iss": self.issuer}))

    def token(self):
        form = flask_request.form.to_dict()
        self.token_requests.append(form)
        if self.token_redirect:
            return redirect(self.token_redirect, code=307)  # 307 keeps the method and the body
        auth = flask_request.authorization
        asked = self._codes.pop(form.get("code", ""), None)
        if auth is None or (auth.username, auth.password) != (self.client_id, self.client_secret):
            return jsonify({"error": "invalid_client"}), 401
        # RFC 7636 4.6: the verifier must hash to the challenge of the authorization request.
        if asked is None or form.get("redirect_uri") != asked.get("redirect_uri") or \
                asked.get("code_challenge_method") != "S256" or \
                s256(form.get("code_verifier", "")) != asked.get("code_challenge"):
            return jsonify({"error": "invalid_grant"}), 400
        now = int(time.time())
        claims = {"iss": self.issuer, "sub": self.subject, "aud": self.client_id, "iat": now,
                  "exp": now + 300, "nonce": asked.get("nonce"), "amr": ["pwd"],
                  "name": "Scripted Person"}
        claims.update(self.claims)
        claims = {k: v for k, v in claims.items() if v is not None}
        id_token = jwt.encode({"alg": "RS256", "kid": "scripted-1"}, claims, self.key,
                              algorithms=["RS256"])
        if self.tamper:
            id_token = flip_signature(id_token)
        access_token = secrets.token_urlsafe(24)
        self._access_tokens.add(access_token)
        return jsonify({"access_token": access_token, "token_type": "Bearer",
                        "expires_in": 300, "id_token": id_token})

    def userinfo_endpoint(self):
        """OIDC Core 5.3: the claims about the subject, for an access token it issued."""
        self.userinfo_requests += 1
        scheme, _, token = flask_request.headers.get("Authorization", "").partition(" ")
        if self.userinfo is None or scheme != "Bearer" or token not in self._access_tokens:
            return jsonify({"error": "invalid_token"}), 401
        return jsonify({"sub": self.subject, **self.userinfo})
