package tokens_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/tokens"
)

// A service verifies the worker's access tokens offline, against the JWKS
// it publishes, and follows the worker's key rotations without a restart.
func ExampleNewRemoteKeySet() {
	ctx := context.Background()

	// The worker's side: an issuer, and its JWKS as httpapi serves it.
	issuer, err := tokens.NewIssuer(ctx, inmem.NewSigningKeyRepository(), tokens.Config{
		Issuer:           "https://auth.example.com",
		Audience:         []string{"billing"},
		KeyEncryptionKey: bytes.Repeat([]byte{0x42}, 32),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	worker := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", "public, max-age=300")
		w.Write(issuer.JWKS())
	}))
	defer worker.Close()
	at, err := issuer.IssueAccessToken(ctx, domain.AccessClaims{UserID: "00000000-0000-7000-8000-000000000001", SessionID: "00000000-0000-7000-8000-000000000002", ClientID: "web"})
	if err != nil {
		fmt.Println(err)
		return
	}

	// The service's side. In production the URL is https.
	keys, err := tokens.NewRemoteKeySet(ctx, worker.URL+"/.well-known/jwks.json", tokens.RemoteOptions{})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer keys.Close()
	verifier, err := tokens.NewRemoteVerifier(keys, tokens.VerifyOptions{
		Issuer:   "https://auth.example.com",
		Audience: "billing",
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	claims, err := verifier.Verify(at.Token)
	fmt.Println(claims.UserID, claims.ClientID, err)
	// Output: 00000000-0000-7000-8000-000000000001 web <nil>
}
