package handlers

import (
	"context"

	"github.com/authworker/authworker/domain"
)

// errInvalidAccessToken is the one reply to an access token that does not
// verify or whose session is revoked.
func errInvalidAccessToken() error {
	return domain.Errorf(domain.CodeUnauthorized, "invalid access token")
}

// authenticate returns the claims of an access token that verifies and
// whose session is not revoked. It fails closed: when the revocation list
// cannot tell, CodeUnavailable.
func authenticate(ctx context.Context, tokens domain.TokenIssuer, revocations domain.RevocationList, token string) (domain.TokenClaims, error) {
	claims, err := tokens.VerifyAccessToken(token)
	if err != nil {
		return domain.TokenClaims{}, errInvalidAccessToken()
	}
	revoked, err := revocations.Revoked(ctx, claims.SessionID)
	if err != nil {
		return domain.TokenClaims{}, err
	}
	if revoked {
		return domain.TokenClaims{}, errInvalidAccessToken()
	}
	return claims, nil
}
