package recipes_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
	recipes "github.com/authworker/authworker/interop/go"
)

// The environment scripts/interop.sh gives every recipe test:
// INTEROP_ISSUER, INTEROP_JWKS_URI, INTEROP_AUDIENCE (the worker's);
// INTEROP_CLIENT_ID and INTEROP_ALG (the client the tokens are asked for
// under, and the algorithm the worker signs its tokens with); INTEROP_MINT
// (a command printing a fresh access token for that client);
// INTEROP_EXPIRED_TOKEN_FILE (a token of that client that expired more than
// INTEROP_LEEWAY_SECONDS ago, the leeway the tests give the verifiers).
func env(t *testing.T, name string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Fatalf("%s is not set: run the recipes through `make interop` (scripts/interop.sh)", name)
	}
	return v
}

func leeway(t *testing.T) time.Duration {
	t.Helper()
	s, err := strconv.Atoi(env(t, "INTEROP_LEEWAY_SECONDS"))
	if err != nil {
		t.Fatalf("INTEROP_LEEWAY_SECONDS: %v", err)
	}
	return time.Duration(s) * time.Second
}

// mint returns a fresh access token signed with the pair's algorithm.
func mint(t *testing.T) string {
	t.Helper()
	cmd := exec.Command(env(t, "INTEROP_MINT"))
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("INTEROP_MINT: %v", err)
	}
	token := strings.TrimSpace(string(out))
	if got, want := header(t, token)["alg"], env(t, "INTEROP_ALG"); got != want {
		t.Fatalf("alg of a token minted for %s = %v, want %s", env(t, "INTEROP_CLIENT_ID"), got, want)
	}
	return token
}

func expired(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(env(t, "INTEROP_EXPIRED_TOKEN_FILE"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b))
}

func header(t *testing.T, token string) map[string]any {
	t.Helper()
	h := map[string]any{}
	b, err := base64.RawURLEncoding.DecodeString(strings.Split(token, ".")[0])
	if err == nil {
		err = json.Unmarshal(b, &h)
	}
	if err != nil {
		t.Fatalf("token %s: header: %v", redact(token), err)
	}
	return h
}

// tampered is token with its sub changed and its signature kept.
func tampered(t *testing.T, token string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	changed := strings.Replace(string(payload), `"sub":"`, `"sub":"x`, 1)
	if changed == string(payload) {
		t.Fatal("the token has no sub to change")
	}
	return parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(changed)) + "." + parts[2]
}

// unsigned is token's claims with alg none (kid kept) and no signature.
func unsigned(t *testing.T, token string) string {
	t.Helper()
	h, err := json.Marshal(map[string]any{"alg": "none", "typ": "at+jwt", "kid": header(t, token)["kid"]})
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(h) + "." + strings.Split(token, ".")[1] + "."
}

// redact is enough of a token to tell it apart, not to use it.
func redact(token string) string {
	if len(token) <= 12 {
		return "<short token>"
	}
	return token[:12] + "..."
}

// recipe is one verifier under test: how to build it for an audience and
// a leeway, and how to tell why it refused a token.
type recipe struct {
	name string
	// leeway reports whether the recipe takes one; the project's own
	// verifier has none.
	leeway bool
	build  func(t *testing.T, audience string, leeway time.Duration) func(token string) (sub string, err error)
	// is reports whether err says the token was refused for want.
	is func(err error, want string) bool
}

// oidcReasons are what go-oidc says of each refusal.
var oidcReasons = map[string]string{"audience": "expected audience", "signature": "failed to verify signature", "unsigned": "malformed jwt"}

var reasons = map[string]error{"expired": jwt.ErrTokenExpired, "audience": jwt.ErrTokenInvalidAudience, "signature": jwt.ErrTokenSignatureInvalid, "unsigned": jwt.ErrTokenSignatureInvalid}

// ownReasons are the causes the project's verifier gives (tokens/verify.go).
var ownReasons = map[string]string{"expired": "token has expired", "audience": "aud does not name us", "signature": "token signature is invalid", "unsigned": "token has an empty segment"}

func recipesUnderTest() []recipe {
	return []recipe{
		{
			name: "authworker",
			build: func(t *testing.T, audience string, _ time.Duration) func(string) (string, error) {
				v, keys, err := recipes.NewAuthworkerVerifier(t.Context(), env(t, "INTEROP_JWKS_URI"), env(t, "INTEROP_ISSUER"), audience)
				if err != nil {
					t.Fatal(err)
				}
				t.Cleanup(keys.Close)
				return func(token string) (string, error) {
					c, err := v.Verify(token)
					return string(c.UserID), err
				}
			},
			is: func(err error, want string) bool {
				var de *domain.Error
				return errors.As(err, &de) && de.Code == domain.CodeUnauthorized && de.Err != nil && strings.HasSuffix(de.Err.Error(), ownReasons[want])
			},
		},
		{
			name:   "golang-jwt+keyfunc",
			leeway: true,
			build: func(t *testing.T, audience string, leeway time.Duration) func(string) (string, error) {
				ctx, cancel := context.WithCancel(context.Background())
				t.Cleanup(cancel)
				v, err := recipes.NewJWTVerifier(ctx, env(t, "INTEROP_JWKS_URI"), env(t, "INTEROP_ISSUER"), audience, leeway)
				if err != nil {
					t.Fatal(err)
				}
				return func(token string) (string, error) {
					c, err := v.Verify(token)
					if err != nil {
						return "", err
					}
					return c.GetSubject()
				}
			},
			is: func(err error, want string) bool { return errors.Is(err, reasons[want]) },
		},
		{
			name:   "go-oidc",
			leeway: true,
			build: func(t *testing.T, audience string, leeway time.Duration) func(string) (string, error) {
				v, err := recipes.NewOIDCVerifier(t.Context(), env(t, "INTEROP_ISSUER"), audience, leeway)
				if err != nil {
					t.Fatal(err)
				}
				return func(token string) (string, error) {
					idt, err := v.Verify(context.Background(), token)
					if err != nil {
						return "", err
					}
					return idt.Subject, nil
				}
			},
			is: func(err error, want string) bool {
				if want == "expired" {
					var expired *oidc.TokenExpiredError
					return errors.As(err, &expired)
				}
				return strings.Contains(err.Error(), oidcReasons[want])
			},
		},
	}
}

func TestRecipes(t *testing.T) {
	audience := env(t, "INTEROP_AUDIENCE")
	for _, r := range recipesUnderTest() {
		t.Run(r.name, func(t *testing.T) {
			verify := r.build(t, audience, leeway(t))
			refused := func(t *testing.T, verify func(string) (string, error), token, why string) {
				t.Helper()
				sub, err := verify(token)
				if err == nil {
					t.Fatalf("%s token %s accepted (sub %q), want it refused", why, redact(token), sub)
				}
				if !r.is(err, why) {
					t.Fatalf("%s token %s refused for another reason: %v", why, redact(token), err)
				}
			}

			t.Run("AcceptsGenuine", func(t *testing.T) {
				token := mint(t)
				sub, err := verify(token)
				if err != nil {
					t.Fatalf("genuine token %s refused: %v", redact(token), err)
				}
				if sub == "" {
					t.Fatal("no sub")
				}
			})
			t.Run("RejectsTampered", func(t *testing.T) { refused(t, verify, tampered(t, mint(t)), "signature") })
			t.Run("RejectsUnsigned", func(t *testing.T) { refused(t, verify, unsigned(t, mint(t)), "unsigned") })
			t.Run("RejectsExpired", func(t *testing.T) {
				token := expired(t)
				refused(t, verify, token, "expired")
				if r.leeway { // refused for its time alone
					if _, err := r.build(t, audience, time.Hour)(token); err != nil {
						t.Fatalf("expired token %s refused with an hour of leeway: %v", redact(token), err)
					}
				}
			})
			t.Run("RejectsWrongAudience", func(t *testing.T) {
				refused(t, r.build(t, "some-other-service", leeway(t)), mint(t), "audience")
			})
		})
	}
}
