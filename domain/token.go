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
	// EmailVerified is the email_verified claim: the owner proved the
	// address.
	EmailVerified bool
}

// TokenClaims are the claims of an access token that verified.
type TokenClaims struct {
	AccessClaims
	ID        string // jti
	Issuer    string
	Audience  []string
	IssuedAt  time.Time
	ExpiresAt time.Time
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
	// VerifyAccessToken checks a token this service issued: signature by a
	// published key, type, issuer, audience and expiry. Any failure is
	// CodeUnauthorized. Revocation is not its concern.
	VerifyAccessToken(token string) (TokenClaims, error)
}
