"""The PyJWT recipe (verify_token.py) against a real worker.

Run by scripts/interop.sh with the environment every recipe test gets:
INTEROP_ISSUER, INTEROP_JWKS_URI, INTEROP_AUDIENCE (the worker's);
INTEROP_CLIENT_ID and INTEROP_ALG (the client the tokens are asked for under,
and the algorithm the worker signs its tokens with); INTEROP_MINT (a command
printing a fresh access token for that client); INTEROP_EXPIRED_TOKEN_FILE (a
token of that client that expired more than INTEROP_LEEWAY_SECONDS ago, the
leeway the tests give the verifiers).
"""

import base64
import json
import os
import subprocess
import unittest

import jwt

from verify_token import AccessTokenVerifier


def env(name):
    value = os.environ.get(name, "")
    if not value:
        raise AssertionError(f"{name} is not set: run the recipes through `make interop`")
    return value


def b64(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(segment):
    return base64.urlsafe_b64decode(segment + "=" * (-len(segment) % 4))


def redact(token):
    return token[:12] + "..." if len(token) > 12 else "<short token>"


def mint():
    token = subprocess.run([env("INTEROP_MINT")], check=True, capture_output=True, text=True, timeout=60).stdout.strip()
    alg = json.loads(unb64(token.split(".")[0]))["alg"]
    if alg != env("INTEROP_ALG"):
        raise AssertionError(f"alg of a token minted for {env('INTEROP_CLIENT_ID')} = {alg}, want {env('INTEROP_ALG')}")
    return token


def expired():
    with open(env("INTEROP_EXPIRED_TOKEN_FILE")) as f:
        return f.read().strip()


def tampered(token):
    header, payload, signature = token.split(".")
    text = unb64(payload).decode()
    changed = text.replace('"sub":"', '"sub":"x', 1)
    assert changed != text, "the token has no sub to change"
    return ".".join([header, b64(changed.encode()), signature])


def unsigned(token):
    kid = json.loads(unb64(token.split(".")[0]))["kid"]
    header = json.dumps({"alg": "none", "typ": "at+jwt", "kid": kid}).encode()
    return b64(header) + "." + token.split(".")[1] + "."


def verifier(audience=None, leeway=None):
    return AccessTokenVerifier(
        env("INTEROP_JWKS_URI"),
        env("INTEROP_ISSUER"),
        audience or env("INTEROP_AUDIENCE"),
        leeway=int(env("INTEROP_LEEWAY_SECONDS")) if leeway is None else leeway,
    )


class PyJWTRecipe(unittest.TestCase):
    def refused(self, error, token, audience=None):
        with self.assertRaises(error, msg=f"token {redact(token)} accepted or refused for another reason"):
            verifier(audience).verify(token)

    def test_accepts_genuine(self):
        token = mint()
        claims = verifier().verify(token)
        self.assertTrue(claims["sub"], f"no sub in {redact(token)}")

    def test_rejects_tampered(self):
        self.refused(jwt.InvalidSignatureError, tampered(mint()))

    def test_rejects_unsigned(self):
        self.refused(jwt.InvalidAlgorithmError, unsigned(mint()))

    def test_rejects_expired_only_past_the_leeway(self):
        token = expired()
        self.refused(jwt.ExpiredSignatureError, token)
        verifier(leeway=3600).verify(token)

    def test_rejects_wrong_audience(self):
        self.refused(jwt.InvalidAudienceError, mint(), audience="some-other-service")


if __name__ == "__main__":
    unittest.main()
