package recipes

import (
	"context"

	"github.com/authworker/authworker/tokens"
)

// NewAuthworkerVerifier verifies access tokens with the project's own
// verifier: the keys of the worker's JWKS, refetched as the worker rotates
// them, and every check the tokens package lists (typ at+jwt, the key's
// algorithm, iss, aud, exp with no leeway). Close the key set when done.
func NewAuthworkerVerifier(ctx context.Context, jwksURI, issuer, audience string) (*tokens.Verifier, *tokens.RemoteKeySet, error) {
	keys, err := tokens.NewRemoteKeySet(ctx, jwksURI, tokens.RemoteOptions{})
	if err != nil {
		return nil, nil, err
	}
	verifier, err := tokens.NewRemoteVerifier(keys, tokens.VerifyOptions{Issuer: issuer, Audience: audience})
	if err != nil {
		keys.Close()
		return nil, nil, err
	}
	return verifier, keys, nil
}
