package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"

	"github.com/authworker/authworker/tokens"
)

// verify checks an access token offline against the JWKS, as a service
// would, and prints its claims.
func verify(e *env, args []string) error {
	var jwksURL string
	var opts tokens.VerifyOptions
	if err := flags("verify", args, func(fs *flag.FlagSet) {
		fs.StringVar(&jwksURL, "jwks", tokens.DefaultIssuer+"/.well-known/jwks.json", "JWKS URL")
		fs.StringVar(&opts.Issuer, "issuer", getenv("AUTH_ISSUER", tokens.DefaultIssuer), "expected iss")
		fs.StringVar(&opts.Audience, "audience", getenv("AUTH_AUDIENCE", "authworker"), "expected aud")
	}); err != nil {
		return err
	}
	if err := opts.Validate(); err != nil { // before any network round trip
		return err
	}
	token, err := e.secret("access token")
	if err != nil {
		return err
	}
	ks, err := fetchJWKS(e.ctx, jwksURL)
	if err != nil {
		return err
	}
	v, err := tokens.NewVerifier(ks, opts)
	if err != nil {
		return err
	}
	claims, err := v.Verify(token)
	if err != nil {
		return fmt.Errorf("%w: %v", err, errors.Unwrap(err))
	}
	return printJSON(e.stdout, claims)
}

func fetchJWKS(ctx context.Context, url string) (*tokens.KeySet, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch JWKS: %s", res.Status)
	}
	body, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	return tokens.ParseJWKS(body)
}
