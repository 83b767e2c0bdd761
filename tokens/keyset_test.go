package tokens_test

import (
	"context"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/tokens"
)

// TestParseJWKSVerifies verifies tokens of every algorithm offline, from the
// published JWKS alone.
func TestParseJWKSVerifies(t *testing.T) {
	for _, alg := range []string{tokens.EdDSA, tokens.ES256, tokens.RS256} {
		t.Run(alg, func(t *testing.T) {
			i := newIssuer(t, inmem.NewSigningKeyRepository(), alg, time.Now)
			at, err := i.IssueAccessToken(context.Background(), claims)
			if err != nil {
				t.Fatal(err)
			}
			ks, err := tokens.ParseJWKS(i.JWKS())
			if err != nil {
				t.Fatal(err)
			}
			got, err := newVerifier(t, ks, "https://auth.example.com", "api").Verify(at.Token)
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessClaims != claims {
				t.Errorf("claims = %+v, want %+v", got.AccessClaims, claims)
			}
			if _, err := newVerifier(t, ks, "https://auth.example.com", "billing").Verify(at.Token); domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Errorf("token for api accepted by billing: %v", err)
			}
			if _, err := newVerifier(t, ks, "https://evil.example.com", "api").Verify(at.Token); domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Errorf("token accepted for another issuer: %v", err)
			}
		})
	}
}

func TestParseJWKSRejects(t *testing.T) {
	tests := []struct {
		name string
		jwks string
	}{
		{"NotJSON", `keys`},
		{"Empty", `{"keys":[]}`},
		{"OnlyEncryptionKeys", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"k","alg":"EdDSA","use":"enc"}]}`},
		{"ShortEd25519", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"k","alg":"EdDSA","use":"sig"}]}`},
		{"WeakRSA", `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB","kid":"k","alg":"RS256","use":"sig"}]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tokens.ParseJWKS([]byte(tt.jwks)); err == nil {
				t.Error("ParseJWKS succeeded, want error")
			}
		})
	}
}

// rfc8037JWKS holds the Ed25519 public key of RFC 8037, appendix A.2.
const rfc8037JWKS = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"rfc8037","alg":"EdDSA"}]}`

// TestParseJWKSRFC8037 reads the Ed25519 public key of RFC 8037, appendix
// A.2, written by another implementation.
func TestParseJWKSRFC8037(t *testing.T) {
	if _, err := tokens.ParseJWKS([]byte(rfc8037JWKS)); err != nil {
		t.Fatal(err)
	}
}

func newVerifier(tb testing.TB, ks *tokens.KeySet, issuer, audience string) *tokens.Verifier {
	tb.Helper()
	v, err := tokens.NewVerifier(ks, tokens.VerifyOptions{Issuer: issuer, Audience: audience})
	if err != nil {
		tb.Fatalf("NewVerifier: %v", err)
	}
	return v
}

// TestNewVerifierRejectsOptions: a verifier that would skip the issuer or
// audience check cannot be built, so no service verifies tokens meant for
// another issuer or another service by leaving an option out.
func TestNewVerifierRejectsOptions(t *testing.T) {
	ks, err := tokens.ParseJWKS([]byte(rfc8037JWKS))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		keys    *tokens.KeySet
		opts    tokens.VerifyOptions
		wantErr bool
	}{
		{"OK", ks, tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api"}, false},
		{"NoIssuer", ks, tokens.VerifyOptions{Audience: "api"}, true},
		{"NoAudience", ks, tokens.VerifyOptions{Issuer: "https://auth.example.com"}, true},
		{"NoKeys", nil, tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, err := tokens.NewVerifier(tt.keys, tt.opts)
			if gotErr := err != nil; gotErr != tt.wantErr {
				t.Fatalf("NewVerifier error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && v == nil {
				t.Error("NewVerifier returned no verifier and no error")
			}
		})
	}
}
