package domain

import (
	"context"
	"time"
)

// AccessClaims is what an access token says: who, through which session and
// client.
type AccessClaims struct {
	UserID    UserID
	SessionID SessionID
	ClientID  string
}

// AccessToken is a signed access token and when it expires.
type AccessToken struct {
	Token     string
	ID        string // the jti claim
	ExpiresAt time.Time
}

// TokenIssuer signs access tokens that any service can verify offline with
// the published JWKS.
type TokenIssuer interface {
	// IssueAccessToken signs a token for the claims with the current key.
	// It returns CodeUnavailable when no signing key can be loaded.
	IssueAccessToken(ctx context.Context, claims AccessClaims) (AccessToken, error)
}
