// Package tokens issues access tokens as JWTs (RFC 9068 profile, typ
// at+jwt), publishes the keys that verify them as a JWKS, and verifies them
// offline, so that a service can check a token without asking the worker.
//
// # Signing keys
//
// Signing keys live in PostgreSQL, behind domain.SigningKeyRepository, with
// their private halves sealed under a key-encryption key (KEK) that only
// the workers hold. Every worker signs with the same current key and
// publishes the same set.
//
// Write access to the database is not enough to add a key. The Issuer
// publishes and uses a stored key only if its sealed private half opens
// under the KEK, bound to the row's kid; parses as a key of the row's
// algorithm; has the row's public half as its public key; and has the row's
// kid as the RFC 7638 thumbprint of that key. Any other row is logged at
// error level, by kid and reason, and ignored. An issuer that trusts no
// stored key to sign with does not start.
//
// # Verifying
//
// Services verify tokens with a Verifier built from the JWKS and what they
// expect of a token:
//
//	keys, err := tokens.ParseJWKS(jwks) // from /.well-known/jwks.json
//	...
//	v, err := tokens.NewVerifier(keys, tokens.VerifyOptions{
//		Issuer:   "https://auth.example.com",
//		Audience: "billing", // this service
//	})
//	...
//	claims, err := v.Verify(token)
//
// NewVerifier refuses an empty Issuer or Audience: a verifier that skipped
// either check would accept tokens minted by another issuer, or for another
// service. ParseJWKS keeps only signing keys that name an algorithm we
// support, so that each kid has exactly one algorithm.
//
// # Following rotations
//
// A KeySet is the JWKS as it was when parsed. The worker rotates its keys,
// so a long-running service verifies against a RemoteKeySet instead, which
// keeps itself current:
//
//	keys, err := tokens.NewRemoteKeySet(ctx, "https://auth.example.com/.well-known/jwks.json", tokens.RemoteOptions{})
//	if err != nil {
//		return err // unreachable, or no usable key: nothing could verify
//	}
//	defer keys.Close()
//	v, err := tokens.NewRemoteVerifier(keys, tokens.VerifyOptions{
//		Issuer:   "https://auth.example.com",
//		Audience: "billing",
//	})
//	...
//	claims, err := v.Verify(token) // offline, from the cached set
//
// The first fetch is synchronous and must succeed. After it, a background
// refresher fetches the JWKS again when the response's Cache-Control
// max-age runs out (Expires if there is none), never sooner than
// MinRefresh (1 minute) nor later than MaxRefresh (1 hour), and
// revalidates with If-None-Match, so an unchanged set costs a 304. The
// worker publishes a key an hour before it signs and serves the JWKS with a
// 5-minute max-age, so a planned rotation reaches every verifier long
// before its first token.
//
// An emergency rotation signs with a key at once. A token whose kid the set
// does not know makes it fetch the JWKS before Verify answers, with
// Cache-Control: no-cache so that caches on the way revalidate; callers
// that meet unknown kids meanwhile wait for that one fetch. Such fetches
// happen at most once per RefreshUnknownKidInterval (30 seconds): a flood
// of tokens with forged kids costs the endpoint one request per interval,
// and between those its tokens fail at once, without waiting. Only tokens
// that pass the checks before the kid (size, encoding, crit, typ, alg) can
// cause a fetch; a signature that fails under a known kid never does,
// since a kid is its key's thumbprint and never names another key.
//
// When the endpoint is down, or answers with anything but a 200 JSON JWKS
// of at most 1 MiB with a usable key, the set keeps its last good keys,
// logs a warning and retries after a jittered backoff that starts at a
// second and doubles up to the refresh interval. It never replaces a good
// set with an empty or broken one. Stats reports fetches, 304s, failures
// and unknown-kid refreshes, and when the set last succeeded, for metrics
// and health checks. The URL must be https, or plain http only to
// loopback (or with AllowHTTP); pass RemoteOptions.Client for private
// roots or a proxy.
//
// Verify accepts a token only if all of the following hold, and otherwise
// returns a CodeUnauthorized error whose cause names the failed check but
// never includes the token or any part of it. RFC 8725 asks verifiers to be
// this strict; where it is silent we follow RFC 7515, RFC 7519 and RFC 9068.
//
//   - The token is at most MaxTokenSize (8 KiB) bytes. This is checked
//     before anything else, so that an unauthenticated caller cannot make a
//     service decode, parse or verify megabytes.
//   - It is exactly three non-empty segments of unpadded base64url in their
//     canonical encoding: no whitespace or line breaks anywhere (Go's
//     decoder would skip them), no padding, no unused bits set. A token has
//     one spelling, so a cache or deny list keyed by token sees one token.
//   - The header and the payload are each one JSON object of UTF-8 text in
//     which no object names a member twice. JSON parsers disagree on which
//     duplicate wins, so such a token could mean one thing to us and
//     another to the next reader; RFC 7515 §4 and RFC 7519 §4 allow
//     refusing it. Members are read by their exact names.
//   - The header has no crit. We understand no extension, and RFC 7515
//     §4.1.11 requires refusing a token whose crit names one we do not.
//   - typ is "at+jwt" or "application/at+jwt", in any case (RFC 9068 §4;
//     media types ignore case, RFC 7515 §4.1.9). An ID token or any other
//     JWT signed by the same key is not an access token (RFC 8725 §3.11).
//   - kid names a key of the set and alg is that key's algorithm: EdDSA,
//     ES256 or RS256. The token never chooses how it is verified, so "none",
//     HMAC keyed with a public key, or another algorithm under a known kid
//     all fail (RFC 8725 §3.1). A RemoteKeySet that does not know the kid
//     may fetch the JWKS once first, as above.
//   - The signature verifies over the first two segments as sent. The
//     payload is parsed only after it does.
//   - iss equals Issuer exactly, and aud, a string or a non-empty array of
//     strings, contains Audience (RFC 8725 §3.8 and §3.9).
//   - exp and iat, and nbf if present, are JSON numbers (NumericDate, RFC
//     7519 §2), not strings that hold digits, between the epoch and the
//     year 9999. The time is before exp and not before iat or nbf. There is
//     no leeway: workers and services keep their clocks in sync.
//   - sub (the user), jti, client_id (RFC 9068 §2.2) and sid (the session)
//     are non-empty strings.
//
// Other members of the header and payload are ignored.
package tokens
