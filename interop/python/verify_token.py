"""Verify the worker's access tokens with PyJWT (pip install "PyJWT[crypto]")."""

import jwt

ACCESS_TOKEN_TYPES = ("at+jwt", "application/at+jwt")


class AccessTokenVerifier:
    """Checks signature (keys from the worker's JWKS), typ, iss, aud and exp."""

    def __init__(self, jwks_uri, issuer, audience, leeway=60):
        # Caches the key set for 5 minutes; fetches it again for an unknown kid.
        self._keys = jwt.PyJWKClient(jwks_uri, lifespan=300)
        self._issuer = issuer
        self._audience = audience
        self._leeway = leeway

    def verify(self, token):
        """Return the token's claims, or raise jwt.PyJWTError."""
        key = self._keys.get_signing_key_from_jwt(token)
        decoded = jwt.decode_complete(
            token,
            key,
            algorithms=["ES256", "RS256", "EdDSA"],
            audience=self._audience,
            issuer=self._issuer,
            leeway=self._leeway,
            options={"require": ["exp", "iat", "iss", "aud", "sub"]},
        )
        # RFC 9068: an access token says so in typ; PyJWT leaves it to us.
        if str(decoded["header"].get("typ", "")).lower() not in ACCESS_TOKEN_TYPES:
            raise jwt.InvalidTokenError("typ is not at+jwt")
        return decoded["payload"]
