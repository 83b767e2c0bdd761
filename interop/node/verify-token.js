// Verify the worker's access tokens with jose (npm install jose).
import { createRemoteJWKSet, jwtVerify } from 'jose';

/**
 * Returns a function that resolves to a token's claims, or rejects if the
 * token is not a valid access token: signature (keys from the worker's JWKS,
 * cached, fetched again for an unknown kid), typ, iss, aud and exp.
 * clockTolerance is how many seconds after exp a token is still accepted.
 */
export function accessTokenVerifier({ jwksUri, issuer, audience, clockTolerance = 60 }) {
  const keys = createRemoteJWKSet(new URL(jwksUri));
  return async (token) => {
    const { payload } = await jwtVerify(token, keys, {
      typ: 'at+jwt', // RFC 9068
      issuer,
      audience,
      algorithms: ['ES256', 'RS256', 'EdDSA'],
      requiredClaims: ['sub', 'exp', 'iat'],
      clockTolerance,
    });
    return payload;
  };
}
