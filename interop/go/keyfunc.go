package recipes

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
)

// JWTVerifier verifies access tokens with golang-jwt, over the keys that
// keyfunc keeps from the worker's JWKS (refreshed in the background, and
// refetched for an unknown kid).
type JWTVerifier struct {
	keys   keyfunc.Keyfunc
	parser *jwt.Parser
}

// NewJWTVerifier fetches the JWKS until ctx ends; leeway is how long after
// exp a token is still accepted.
func NewJWTVerifier(ctx context.Context, jwksURI, issuer, audience string, leeway time.Duration) (*JWTVerifier, error) {
	keys, err := keyfunc.NewDefaultCtx(ctx, []string{jwksURI})
	if err != nil {
		return nil, err
	}
	return &JWTVerifier{keys: keys, parser: jwt.NewParser(
		jwt.WithValidMethods([]string{"ES256", "RS256", "EdDSA"}),
		jwt.WithIssuer(issuer),
		jwt.WithAudience(audience),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(leeway),
	)}, nil
}

// Verify returns the claims of a valid access token.
func (v *JWTVerifier) Verify(token string) (jwt.MapClaims, error) {
	claims := jwt.MapClaims{}
	_, err := v.parser.ParseWithClaims(token, claims, func(t *jwt.Token) (any, error) {
		// RFC 9068: an access token says so; golang-jwt leaves typ to us.
		typ, _ := t.Header["typ"].(string)
		if !strings.EqualFold(typ, "at+jwt") && !strings.EqualFold(typ, "application/at+jwt") {
			return nil, errors.New("typ is not at+jwt")
		}
		return v.keys.Keyfunc(t)
	})
	if err != nil {
		return nil, err
	}
	return claims, nil
}
