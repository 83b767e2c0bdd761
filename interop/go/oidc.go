package recipes

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

// OIDCVerifier verifies access tokens with go-oidc. Its provider reads the
// worker's discovery document: the JWKS from jwks_uri, and the algorithms
// to accept from id_token_signing_alg_values_supported (without them,
// go-oidc accepts RS256 alone).
type OIDCVerifier struct {
	verifier *oidc.IDTokenVerifier
}

// NewOIDCVerifier discovers the worker's keys from its issuer; leeway is
// how long after exp a token is still accepted.
func NewOIDCVerifier(ctx context.Context, issuer, audience string, leeway time.Duration) (*OIDCVerifier, error) {
	provider, err := oidc.NewProvider(ctx, issuer)
	if err != nil {
		return nil, err
	}
	return &OIDCVerifier{verifier: provider.Verifier(&oidc.Config{
		ClientID: audience, // the aud it requires
		// go-oidc has no leeway of its own: its clock runs that far behind.
		Now: func() time.Time { return time.Now().Add(-leeway) },
	})}, nil
}

// Verify returns the claims of a valid access token. go-oidc checks the
// signature, iss, aud and exp, but not typ: that is checked here.
func (v *OIDCVerifier) Verify(ctx context.Context, token string) (*oidc.IDToken, error) {
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		return nil, err
	}
	var h struct {
		Typ string `json:"typ"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		return nil, err
	}
	if !strings.EqualFold(h.Typ, "at+jwt") && !strings.EqualFold(h.Typ, "application/at+jwt") {
		return nil, errors.New("typ is not at+jwt")
	}
	return v.verifier.Verify(ctx, token)
}
