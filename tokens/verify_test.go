package tokens_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/tokens"
)

var b64url = base64.RawURLEncoding

// jwsKey is a private key and how it signs: ours, published in the JWKS the
// verifier trusts, or an attacker's.
type jwsKey struct {
	method jwt.SigningMethod
	key    any
}

// forger builds tokens byte by byte, valid or not, and signs them.
type forger struct {
	t   testing.TB
	now time.Time
}

// header returns the JSON of our header for kid and alg, edited.
func (f forger) header(alg, kid string, edits ...func(map[string]any)) []byte {
	return f.json(map[string]any{"alg": alg, "typ": "at+jwt", "kid": kid}, edits)
}

// claims returns the JSON of a complete, live claim set, edited.
func (f forger) claims(edits ...func(map[string]any)) []byte {
	return f.json(map[string]any{
		"iss":       "https://auth.example.com",
		"sub":       "00000000-0000-7000-8000-000000000001",
		"aud":       []string{"api"},
		"exp":       f.now.Add(15 * time.Minute).Unix(),
		"iat":       f.now.Unix(),
		"jti":       "AAAAAAAAAAAAAAAAAAAAAA",
		"sid":       "00000000-0000-7000-8000-000000000002",
		"client_id": "web",
	}, edits)
}

func (f forger) json(m map[string]any, edits []func(map[string]any)) []byte {
	f.t.Helper()
	for _, edit := range edits {
		edit(m)
	}
	b, err := json.Marshal(m)
	if err != nil {
		f.t.Fatal(err)
	}
	return b
}

// sign returns header.payload.signature, signed by k over the exact bytes
// given.
func (f forger) sign(k jwsKey, header, payload []byte) string {
	f.t.Helper()
	input := b64url.EncodeToString(header) + "." + b64url.EncodeToString(payload)
	sig, err := k.method.Sign(input, k.key)
	if err != nil {
		f.t.Fatal(err)
	}
	return input + "." + b64url.EncodeToString(sig)
}

func set(name string, value any) func(map[string]any) {
	return func(m map[string]any) { m[name] = value }
}

func del(name string) func(map[string]any) {
	return func(m map[string]any) { delete(m, name) }
}

// withMember appends a raw member to a JSON object, after those it has.
func withMember(object []byte, member string) []byte {
	return []byte(strings.TrimSuffix(string(object), "}") + "," + member + "}")
}

// segment replaces segment n of token.
func segment(token string, n int, with string) string {
	parts := strings.Split(token, ".")
	parts[n] = with
	return strings.Join(parts, ".")
}

// nonCanonical re-encodes the last base64url character of token with its
// unused low bits set: the same bytes, written another way.
func nonCanonical(tb testing.TB, token string) string {
	tb.Helper()
	const alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
	last := strings.IndexByte(alphabet, token[len(token)-1])
	if (len(token)-strings.LastIndexByte(token, '.')-1)%4 == 0 || last&1 != 0 {
		tb.Fatal("signature has no unused bits to set")
	}
	return token[:len(token)-1] + string(alphabet[last|1])
}

// padTo returns a valid token of exactly size bytes, padded by a claim and,
// as base64url skips some lengths, a header member.
func padTo(tb testing.TB, f forger, k jwsKey, size int) string {
	tb.Helper()
	for headerPad := range 4 {
		header := f.header("EdDSA", "ed", set("pad", strings.Repeat("a", headerPad)))
		base := len(f.sign(k, header, f.claims(set("pad", ""))))
		for pad := max(0, (size-base)*3/4-8); pad < size; pad++ {
			token := f.sign(k, header, f.claims(set("pad", strings.Repeat("a", pad))))
			if len(token) == size {
				return token
			}
			if len(token) > size {
				break
			}
		}
	}
	tb.Fatalf("no padding makes a token of %d bytes", size)
	return ""
}

func newEdDSAKey(tb testing.TB) jwsKey {
	tb.Helper()
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return jwsKey{jwt.SigningMethodEdDSA, priv}
}

func newES256Key(tb testing.TB) jwsKey {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return jwsKey{jwt.SigningMethodES256, priv}
}

// newRS256Key returns a 2048-bit key, the least ParseJWKS accepts, for
// speed.
func newRS256Key(tb testing.TB) jwsKey {
	tb.Helper()
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		tb.Fatal(err)
	}
	return jwsKey{jwt.SigningMethodRS256, priv}
}

// jwksOf publishes the public halves of keys, by kid.
func jwksOf(tb testing.TB, keys map[string]jwsKey) *tokens.KeySet {
	tb.Helper()
	ks, err := tokens.ParseJWKS(jwksJSON(tb, keys))
	if err != nil {
		tb.Fatal(err)
	}
	return ks
}

// jwksJSON is the JWKS of the public halves of keys, by kid.
func jwksJSON(tb testing.TB, keys map[string]jwsKey) []byte {
	tb.Helper()
	set := tokens.JWKS{Keys: []tokens.JWK{}}
	for kid, k := range keys {
		jwk := tokens.JWK{Kid: kid, Alg: k.method.Alg(), Use: "sig"}
		switch priv := k.key.(type) {
		case ed25519.PrivateKey:
			jwk.Kty, jwk.Crv, jwk.X = "OKP", "Ed25519", b64url.EncodeToString(priv.Public().(ed25519.PublicKey))
		case *ecdsa.PrivateKey:
			point, err := priv.PublicKey.Bytes()
			if err != nil {
				tb.Fatal(err)
			}
			jwk.Kty, jwk.Crv, jwk.X, jwk.Y = "EC", "P-256", b64url.EncodeToString(point[1:33]), b64url.EncodeToString(point[33:])
		case *rsa.PrivateKey:
			jwk.Kty, jwk.N, jwk.E = "RSA", b64url.EncodeToString(priv.N.Bytes()), b64url.EncodeToString(big.NewInt(int64(priv.E)).Bytes())
		default:
			tb.Fatalf("no JWK for %T", priv)
		}
		set.Keys = append(set.Keys, jwk)
	}
	data, err := json.Marshal(set)
	if err != nil {
		tb.Fatal(err)
	}
	return data
}

// TestVerifyForgedTokens verifies tokens built by hand, each valid or with
// one flaw, against a JWKS of our EdDSA, ES256 and RS256 keys. Every flaw
// sits in a token that is otherwise valid and signed by the right key
// unless the flaw is the key, so a rejection is the flaw's doing; the OK
// rows show the same builder makes tokens that verify.
func TestVerifyForgedTokens(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f := forger{t: t, now: now}

	ours, oursES, oursRS := newEdDSAKey(t), newES256Key(t), newRS256Key(t)
	published := map[string]jwsKey{"ed": ours, "es": oursES, "rs": oursRS}
	opts := tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api", Now: func() time.Time { return now }}
	static, err := tokens.NewVerifier(jwksOf(t, published), opts)
	if err != nil {
		t.Fatal(err)
	}
	// The same checks hold whichever way the keys arrive.
	remoteKeys := newRemoteKeySet(t, newJWKSServer(t, published), newFakeClock(), tokens.RemoteOptions{})
	remote, err := tokens.NewRemoteVerifier(remoteKeys, opts)
	if err != nil {
		t.Fatal(err)
	}

	attacker, attackerES := newEdDSAKey(t), newES256Key(t)
	// The classic algorithm swap: HMAC keyed with the verifier's public key.
	hmacWithPublicKey := jwsKey{jwt.SigningMethodHS256, []byte(ours.key.(ed25519.PrivateKey).Public().(ed25519.PublicKey))}

	valid := f.sign(ours, f.header("EdDSA", "ed"), f.claims())
	header, payload, _ := strings.Cut(valid, ".")
	payload, _, _ = strings.Cut(payload, ".")

	tests := []struct {
		name   string
		token  string
		wantOK bool
	}{
		{"OK", valid, true},
		{"OKES256", f.sign(oursES, f.header("ES256", "es"), f.claims()), true},
		{"OKRS256", f.sign(oursRS, f.header("RS256", "rs"), f.claims()), true},
		{"OKAudienceString", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("aud", "api"))), true},
		{"OKAudienceAmongOthers", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("aud", []string{"billing", "api"}))), true},
		{"OKNotBeforeNow", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("nbf", now.Unix()))), true},
		{"OKFractionalExpiry", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("exp", float64(now.Add(15*time.Minute).Unix())+0.5))), true},

		// The algorithm comes from the key, never from the token.
		{"AlgNone", b64url.EncodeToString(f.header("none", "ed")) + "." + payload + ".", false},
		{"AlgNoneWithoutKid", b64url.EncodeToString([]byte(`{"alg":"none","typ":"at+jwt"}`)) + "." + payload + ".", false},
		{"AlgHS256KeyedWithPublicKey", f.sign(hmacWithPublicKey, f.header("HS256", "ed"), f.claims()), false},
		{"AlgES256UnderEdDSAKey", f.sign(attackerES, f.header("ES256", "ed"), f.claims()), false},
		{"AlgEdDSAUnderES256Key", f.sign(attacker, f.header("EdDSA", "es"), f.claims()), false},
		{"UnknownKid", f.sign(ours, f.header("EdDSA", "nope"), f.claims()), false},
		{"NoKid", f.sign(ours, f.header("EdDSA", "ed", del("kid")), f.claims()), false},
		{"WrongKey", f.sign(attacker, f.header("EdDSA", "ed"), f.claims()), false},
		{"TamperedPayload", segment(valid, 1, b64url.EncodeToString(f.claims(set("sub", "admin")))), false},
		{"SignatureStripped", header + "." + payload + ".", false},

		// Time, issuer and audience.
		{"Expired", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("exp", now.Add(-time.Second).Unix()))), false},
		{"ExpiresNow", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("exp", now.Unix()))), false},
		{"NotYetValid", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("nbf", now.Add(time.Minute).Unix()))), false},
		{"IssuedInTheFuture", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("iat", now.Add(time.Minute).Unix()))), false},
		{"WrongIssuer", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("iss", "https://evil.example.com"))), false},
		{"IssuerOtherCase", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("iss", "https://Auth.example.com"))), false},
		{"WrongAudience", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("aud", []string{"billing"}))), false},

		// Type: an access token, not an ID token or another JWT.
		{"TypJWT", f.sign(ours, f.header("EdDSA", "ed", set("typ", "JWT")), f.claims()), false},
		{"TypMissing", f.sign(ours, f.header("EdDSA", "ed", del("typ")), f.claims()), false},

		// The claims RFC 9068 §2.2 requires, and our sid, each present
		// and of its type; dates are NumericDate numbers (RFC 7519 §2).
		{"MissingIat", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("iat"))), false},
		{"MissingExp", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("exp"))), false},
		{"MissingIss", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("iss"))), false},
		{"MissingAud", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("aud"))), false},
		{"MissingSub", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("sub"))), false},
		{"MissingJti", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("jti"))), false},
		{"MissingClientID", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("client_id"))), false},
		{"MissingSid", f.sign(ours, f.header("EdDSA", "ed"), f.claims(del("sid"))), false},
		{"EmptySub", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("sub", ""))), false},
		{"EmptyJti", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("jti", ""))), false},
		{"EmptyClientID", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("client_id", ""))), false},
		{"EmptySid", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("sid", ""))), false},
		{"SubNumber", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("sub", 42))), false},
		{"SidNull", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("sid", nil))), false},
		{"AudEmpty", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("aud", []string{}))), false},
		{"AudNotStrings", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("aud", []any{"api", 1}))), false},
		{"ExpString", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("exp", fmt.Sprint(now.Add(time.Hour).Unix())))), false},
		{"IatString", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("iat", fmt.Sprint(now.Unix())))), false},
		{"NbfString", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("nbf", fmt.Sprint(now.Unix())))), false},
		{"ExpNull", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("exp", nil))), false},
		{"ExpBeyondYear9999", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("exp", 1e300))), false},
		{"IatNegative", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("iat", -1))), false},

		// RFC 9068 §4 allows either spelling of the type; media types
		// ignore case (RFC 7515 §4.1.9).
		{"OKTypApplicationAtJWT", f.sign(ours, f.header("EdDSA", "ed", set("typ", "application/at+jwt")), f.claims()), true},
		{"OKTypUpperCase", f.sign(ours, f.header("EdDSA", "ed", set("typ", "AT+JWT")), f.claims()), true},
		{"OKTypApplicationMixedCase", f.sign(ours, f.header("EdDSA", "ed", set("typ", "Application/At+JWT")), f.claims()), true},
		{"TypApplicationJWT", f.sign(ours, f.header("EdDSA", "ed", set("typ", "application/jwt")), f.claims()), false},
		{"TypWithParameter", f.sign(ours, f.header("EdDSA", "ed", set("typ", "application/at+jwt; charset=utf-8")), f.claims()), false},
		{"TypNotString", f.sign(ours, f.header("EdDSA", "ed", set("typ", []string{"at+jwt"})), f.claims()), false},

		// We understand no extension, so no token may need one (RFC 7515
		// §4.1.11).
		{"Crit", f.sign(ours, f.header("EdDSA", "ed", set("crit", []string{"exp"}), set("exp", now.Add(time.Hour).Unix())), f.claims()), false},
		{"CritEmpty", f.sign(ours, f.header("EdDSA", "ed", set("crit", []string{})), f.claims()), false},
		{"CritB64", f.sign(ours, f.header("EdDSA", "ed", set("crit", []string{"b64"}), set("b64", true)), f.claims()), false},

		// One reading only: no member twice, whatever the JSON parser
		// would keep, and nothing but a JSON object of UTF-8 text.
		{"DuplicateHeaderTyp", f.sign(ours, withMember(f.header("EdDSA", "ed", set("typ", "JWT")), `"typ":"at+jwt"`), f.claims()), false},
		{"DuplicateHeaderKid", f.sign(ours, withMember(f.header("EdDSA", "ed"), `"kid":"ed"`), f.claims()), false},
		{"DuplicateSub", f.sign(ours, f.header("EdDSA", "ed"), withMember(f.claims(), `"sub":"admin"`)), false},
		{"DuplicateExp", f.sign(ours, f.header("EdDSA", "ed"), withMember(f.claims(), fmt.Sprintf(`"exp":%d`, now.Add(time.Hour).Unix()))), false},
		{"DuplicateEscapedName", f.sign(ours, f.header("EdDSA", "ed"), withMember(f.claims(), `"s\u0075b":"admin"`)), false},
		{"DuplicateNested", f.sign(ours, f.header("EdDSA", "ed"), withMember(f.claims(), `"cnf":{"jkt":"a","jkt":"b"}`)), false},
		{"PayloadInvalidUTF8", f.sign(ours, f.header("EdDSA", "ed"), withMember(f.claims(), "\"note\":\"\xff\"")), false},
		{"PayloadTrailingData", f.sign(ours, f.header("EdDSA", "ed"), append(f.claims(), "{}"...)), false},
		{"PayloadNull", f.sign(ours, f.header("EdDSA", "ed"), []byte("null")), false},
		{"PayloadArray", f.sign(ours, f.header("EdDSA", "ed"), []byte("[]")), false},
		{"HeaderNull", f.sign(ours, []byte("null"), f.claims()), false},

		// Not a token at all.
		{"Empty", "", false},
		{"Garbage", "not a token", false},
		{"Padded", valid + "==", false},

		// Exactly three base64url segments, nothing around or inside them.
		{"TrailingNewline", valid + "\n", false},
		{"TrailingCRLF", valid + "\r\n", false},
		{"TrailingSpace", valid + " ", false},
		{"LeadingSpace", " " + valid, false},
		{"NewlineInPayload", segment(valid, 1, payload[:10]+"\n"+payload[10:]), false},
		{"NonCanonicalSignature", nonCanonical(t, valid), false},
		{"TwoSegments", header + "." + payload, false},
		{"FourSegments", valid + ".e30", false},
		{"Oversized", f.sign(ours, f.header("EdDSA", "ed"), f.claims(set("pad", strings.Repeat("a", 1<<20)))), false},
		{"JustOverLimit", padTo(t, f, ours, tokens.MaxTokenSize+1), false},
		{"OKAtLimit", padTo(t, f, ours, tokens.MaxTokenSize), true},
	}
	for _, src := range []struct {
		name string
		v    *tokens.Verifier
	}{{"Static", static}, {"Remote", remote}} {
		t.Run(src.name, func(t *testing.T) {
			for _, tt := range tests {
				t.Run(tt.name, func(t *testing.T) {
					got, err := src.v.Verify(tt.token)
					if tt.wantOK {
						if err != nil {
							t.Fatalf("Verify = %v, want OK", err)
						}
						if got.UserID == "" || got.SessionID == "" || got.ClientID == "" || got.ID == "" || got.ExpiresAt.IsZero() || got.IssuedAt.IsZero() {
							t.Errorf("Verify claims = %+v, want every claim", got)
						}
						return
					}
					if code := domain.ErrorCode(err); code != domain.CodeUnauthorized {
						t.Errorf("Verify = %v (code %q), want %q", err, code, domain.CodeUnauthorized)
					}
					if err != nil && tt.token != "" && strings.Contains(err.Error(), tt.token) {
						t.Error("Verify's error contains the token")
					}
				})
			}
		})
	}
	// Only the unknown kid sent the remote set back to the endpoint: no
	// other flaw, however malformed, reaches the network.
	if got := remoteKeys.Stats(); got.Fetches != 1+got.UnknownKidRefreshes || got.UnknownKidRefreshes > 1 {
		t.Errorf("remote set fetched %d times, %d for unknown kids; want the first fetch and one for the unknown kid", got.Fetches, got.UnknownKidRefreshes)
	}
}

// FuzzVerifySignedJSON signs whatever header and payload bytes it is given
// with a trusted key, so that every check behind the signature is reached:
// Verify must never panic, and a token it accepts has every claim.
func FuzzVerifySignedJSON(f *testing.F) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	forge := forger{t: f, now: now}
	f.Add(forge.header("EdDSA", "ed"), forge.claims())
	f.Add(forge.header("EdDSA", "ed"), forge.claims(del("iat")))
	f.Add(forge.header("EdDSA", "ed"), forge.claims(set("exp", "1893456000")))
	f.Add(withMember(forge.header("EdDSA", "ed"), `"crit":["exp"]`), forge.claims())
	f.Add([]byte(`{"alg":"EdDSA","kid":"ed","typ":"at+jwt"}`), []byte(`{"aud":[],"exp":-1e999}`))
	ours := newEdDSAKey(f)
	v, err := tokens.NewVerifier(jwksOf(f, map[string]jwsKey{"ed": ours}),
		tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api", Now: func() time.Time { return now }})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, header, payload []byte) {
		got, err := v.Verify(forger{t: t, now: now}.sign(ours, header, payload))
		if err != nil {
			return
		}
		if got.UserID == "" || got.SessionID == "" || got.ClientID == "" || got.ID == "" || got.ExpiresAt.IsZero() || got.IssuedAt.IsZero() {
			t.Errorf("Verify accepted a token with claims %+v, want every claim", got)
		}
	})
}
