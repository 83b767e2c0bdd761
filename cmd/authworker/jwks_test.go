package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/httpapi"
	"github.com/authworker/authworker/testenv"
	"github.com/authworker/authworker/tokens"
)

// response is what a test keeps of an HTTP answer.
type response struct {
	code int
	etag string
	body string
}

// httpGet gets url, with If-None-Match when ifNoneMatch is set.
func httpGet(t *testing.T, url, ifNoneMatch string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ifNoneMatch != "" {
		req.Header.Set("If-None-Match", ifNoneMatch)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return response{code: res.StatusCode, etag: res.Header.Get("ETag"), body: string(body)}
}

// TestJWKSServedWhilePostgresIsDown: the worker's PostgreSQL server, one of
// the test's own, is stopped under it. Reloading the signing keys fails and
// /readyz reports PostgreSQL unavailable, but the JWKS and the discovery
// documents are served from memory all the while: 200 with the last keys
// and the same ETag, 304 to a revalidation. Once the server is back, the
// keys reload again.
func TestJWKSServedWhilePostgresIsDown(t *testing.T) {
	pg := testenv.PrivatePostgres(t)
	const issuer = "https://auth.test/tenant"
	w := startWorker(t, "DATABASE_URL="+pg.URL(), "AUTH_ISSUER="+issuer)
	base := "http://" + w.main.http.Addr()
	ctx := context.Background()

	jwks := httpGet(t, base+"/.well-known/jwks.json", "")
	if jwks.code != http.StatusOK || jwks.etag == "" || !strings.Contains(jwks.body, `"kid"`) {
		t.Fatalf("JWKS before the outage: %d, ETag %q, %s", jwks.code, jwks.etag, jwks.body)
	}

	pg.Stop(t, testenv.Fast)
	if err := w.main.issuer.Reload(ctx); err == nil {
		t.Fatal("the keys reloaded with PostgreSQL down: the outage is not one")
	}
	if ready := httpGet(t, base+"/readyz", ""); ready.code != http.StatusServiceUnavailable || !strings.Contains(ready.body, `"postgres":"unavailable"`) {
		t.Errorf("/readyz with PostgreSQL down = %d %s, want 503 naming postgres", ready.code, ready.body)
	}
	for _, path := range []string{"/.well-known/jwks.json", "/tenant/.well-known/jwks.json"} {
		got := httpGet(t, base+path, "")
		if got.code != http.StatusOK || got.body != jwks.body || got.etag != jwks.etag {
			t.Errorf("GET %s with PostgreSQL down = %d, ETag %q, %s; want 200 with the last keys, ETag %q", path, got.code, got.etag, got.body, jwks.etag)
		}
		if got := httpGet(t, base+path, jwks.etag); got.code != http.StatusNotModified || got.body != "" {
			t.Errorf("revalidating %s with PostgreSQL down = %d %q, want an empty 304", path, got.code, got.body)
		}
	}
	for _, path := range []string{"/tenant/.well-known/openid-configuration", "/.well-known/oauth-authorization-server/tenant"} {
		got := httpGet(t, base+path, "")
		var meta struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := json.Unmarshal([]byte(got.body), &meta); got.code != http.StatusOK || err != nil ||
			meta.Issuer != issuer || meta.JWKSURI != issuer+"/.well-known/jwks.json" {
			t.Errorf("GET %s with PostgreSQL down = %d %s, want the metadata of %s", path, got.code, got.body, issuer)
		}
	}

	pg.Start(t)
	waitFor(t, "the keys to reload", func() bool { return w.main.issuer.Reload(ctx) == nil })
	if got := httpGet(t, base+"/.well-known/jwks.json", jwks.etag); got.code != http.StatusNotModified {
		t.Errorf("after the outage, the same keys: %d, want 304 to the ETag from before", got.code)
	}
}

func TestJWKSSettings(t *testing.T) {
	kek := "AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name        string
		env         []string
		wantJWKSURI string
		wantMaxAge  time.Duration
	}{
		{"Defaults", nil, "http://localhost:8080/.well-known/jwks.json", httpapi.DefaultJWKSMaxAge},
		{"IssuerWithPath", []string{"AUTH_ISSUER=https://auth.example.com/tenant/"}, "https://auth.example.com/tenant/.well-known/jwks.json", httpapi.DefaultJWKSMaxAge},
		{"Set", []string{"AUTH_ISSUER=https://auth.example.com", "AUTH_JWKS_URI=https://keys.example.com/jwks.json", "AUTH_JWKS_MAX_AGE=90s"},
			"https://keys.example.com/jwks.json", 90 * time.Second},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(append(tt.env, kek))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.HTTP.JWKSURI != tt.wantJWKSURI || cfg.HTTP.JWKSMaxAge != tt.wantMaxAge || cfg.HTTP.Issuer != cfg.Tokens.Issuer {
				t.Errorf("HTTP config: issuer %q, jwks_uri %q, max-age %v; want issuer %q, %q, %v",
					cfg.HTTP.Issuer, cfg.HTTP.JWKSURI, cfg.HTTP.JWKSMaxAge, cfg.Tokens.Issuer, tt.wantJWKSURI, tt.wantMaxAge)
			}
		})
	}
}

// TestSigningAlgorithmSettings: AUTH_SIGNING_ALG is the default,
// AUTH_SIGNING_ALGS keeps others signing, and AUTH_CLIENT_SIGNING_ALGS
// gives a client its own.
func TestSigningAlgorithmSettings(t *testing.T) {
	kek := "AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))
	tests := []struct {
		name    string
		env     []string
		def     string
		others  []string
		clients map[string]string
	}{
		{"Defaults", nil, "", nil, nil}, // the key signing decides (tokens.InheritedAlgorithm)
		{"EdDSADefault", []string{"AUTH_SIGNING_ALG=EdDSA"}, tokens.EdDSA, nil, nil},
		{"Several", []string{"AUTH_SIGNING_ALG=ES256", "AUTH_SIGNING_ALGS= EdDSA , RS256", "AUTH_CLIENT_SIGNING_ALGS=billing-go=EdDSA, orders-spring = RS256"},
			tokens.ES256, []string{tokens.EdDSA, tokens.RS256}, map[string]string{"billing-go": tokens.EdDSA, "orders-spring": tokens.RS256}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := LoadConfig(append(tt.env, kek))
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Tokens.Algorithm != tt.def || !slices.Equal(cfg.Tokens.Algorithms, tt.others) || !maps.Equal(cfg.Tokens.ClientAlgorithms, tt.clients) {
				t.Errorf("algorithms: default %s, others %v, clients %v; want %s, %v, %v",
					cfg.Tokens.Algorithm, cfg.Tokens.Algorithms, cfg.Tokens.ClientAlgorithms, tt.def, tt.others, tt.clients)
			}
		})
	}
}

// TestClientSigningAlgorithms: a worker told to give two clients their own
// algorithms signs each client's tokens, refreshed ones too, with its
// algorithm and everyone else's with the default; the discovery document
// names the three, and a verifier of the JWKS accepts every token.
func TestClientSigningAlgorithms(t *testing.T) {
	w := startWorker(t, "AUTH_CLIENT_SIGNING_ALGS=billing-go=EdDSA,orders-spring=RS256")
	ctx := context.Background()
	base := "http://" + w.main.http.Addr()

	res, err := http.Get(base + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		Algorithms []string `json:"id_token_signing_alg_values_supported"`
	}
	err = json.NewDecoder(res.Body).Decode(&meta)
	res.Body.Close()
	if err != nil || !slices.Equal(meta.Algorithms, []string{tokens.ES256, tokens.EdDSA, tokens.RS256}) {
		t.Fatalf("discovery names algorithms %v (%v), want ES256, EdDSA and RS256", meta.Algorithms, err)
	}
	keys, err := tokens.NewRemoteKeySet(ctx, base+httpapi.JWKSPath, tokens.RemoteOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keys.Close)
	verifier, err := tokens.NewRemoteVerifier(keys, tokens.VerifyOptions{Issuer: "https://auth.test", Audience: "api"})
	if err != nil {
		t.Fatal(err)
	}

	email := testenv.Unique("algs") + "@example.com"
	if _, err := w.client(t).Register(ctx, email, password); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct{ client, alg string }{
		{"web", tokens.ES256},
		{"billing-go", tokens.EdDSA},
		{"orders-spring", tokens.RS256},
	} {
		t.Run(tt.client, func(t *testing.T) {
			c := w.clientAs(t, tt.client)
			login, err := c.Login(ctx, email, password)
			if err != nil {
				t.Fatal(err)
			}
			refreshed, err := c.Refresh(ctx, login.RefreshToken)
			if err != nil {
				t.Fatal(err)
			}
			for what, token := range map[string]string{"login": login.AccessToken, "refresh": refreshed.AccessToken} {
				if alg := headerAlg(t, token); alg != tt.alg {
					t.Errorf("%s: token signed with %s, want %s", what, alg, tt.alg)
				}
				claims, err := verifier.Verify(token)
				if err != nil {
					t.Errorf("%s: the JWKS does not verify the %s token: %v", what, tt.alg, err)
				} else if claims.ClientID != tt.client {
					t.Errorf("%s: client_id %q, want %q", what, claims.ClientID, tt.client)
				}
			}
		})
	}
}

// headerAlg returns the alg of a JWT's header.
func headerAlg(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Alg string `json:"alg"`
	}
	if err := json.Unmarshal(raw, &h); err != nil {
		t.Fatal(err)
	}
	return h.Alg
}
