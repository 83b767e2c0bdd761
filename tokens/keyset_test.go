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
			got, err := ks.Verify(at.Token, tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api"})
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessClaims != claims {
				t.Errorf("claims = %+v, want %+v", got.AccessClaims, claims)
			}
			if _, err := ks.Verify(at.Token, tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "billing"}); domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Errorf("token for api accepted by billing: %v", err)
			}
			if _, err := ks.Verify(at.Token, tokens.VerifyOptions{Issuer: "https://evil.example.com", Audience: "api"}); domain.ErrorCode(err) != domain.CodeUnauthorized {
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

// TestParseJWKSRFC8037 reads the Ed25519 public key of RFC 8037, appendix
// A.2, written by another implementation.
func TestParseJWKSRFC8037(t *testing.T) {
	const jwks = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"rfc8037","alg":"EdDSA"}]}`
	if _, err := tokens.ParseJWKS([]byte(jwks)); err != nil {
		t.Fatal(err)
	}
}
