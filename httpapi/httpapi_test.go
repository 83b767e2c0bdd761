package httpapi_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/httpapi"
)

func get(t *testing.T, h http.Handler, path string) (*http.Response, map[string]any) {
	t.Helper()
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, path, nil))
	res := rec.Result()
	var body map[string]any
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		t.Fatalf("GET %s: body is not JSON: %v", path, err)
	}
	return res, body
}

// newHandler is the handler for cfg, with issuer https://auth.example.com
// unless cfg names one.
func newHandler(t testing.TB, cfg httpapi.Config) http.Handler {
	t.Helper()
	if cfg.Issuer == "" {
		cfg.Issuer = "https://auth.example.com"
	}
	if cfg.JWKS == nil {
		cfg.JWKS = func() []byte { return []byte(`{"keys":[]}`) }
	}
	h, err := httpapi.NewHandler(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func ok(context.Context) error { return nil }

func down(context.Context) error {
	return domain.Unavailable("redis", errors.New("dial tcp 127.0.0.1:6379: connection refused"))
}

func TestHealthz(t *testing.T) {
	h := newHandler(t, httpapi.Config{Checks: []httpapi.Check{{"redis", down}}})
	res, body := get(t, h, "/healthz")
	if res.StatusCode != http.StatusOK || body["status"] != "ok" {
		t.Errorf("GET /healthz = %d %v, want 200 ok even when a dependency is down", res.StatusCode, body)
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name       string
		checks     []httpapi.Check
		wantCode   int
		wantChecks map[string]string
	}{
		{"AllReady", []httpapi.Check{{"postgres", ok}, {"redis", ok}, {"kafka", ok}}, http.StatusOK,
			map[string]string{"postgres": "ok", "redis": "ok", "kafka": "ok"}},
		{"RedisDown", []httpapi.Check{{"postgres", ok}, {"redis", down}, {"kafka", ok}}, http.StatusServiceUnavailable,
			map[string]string{"postgres": "ok", "redis": "unavailable", "kafka": "ok"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, httpapi.Config{Checks: tt.checks})
			res, body := get(t, h, "/readyz")
			if res.StatusCode != tt.wantCode {
				t.Errorf("status = %d, want %d", res.StatusCode, tt.wantCode)
			}
			checks, _ := body["checks"].(map[string]any)
			for name, want := range tt.wantChecks {
				if got := checks[name]; got != want {
					t.Errorf("checks[%s] = %v, want %q", name, got, want)
				}
			}
		})
	}
}

func TestReadyzHidesCauses(t *testing.T) {
	h := newHandler(t, httpapi.Config{Checks: []httpapi.Check{{"redis", down}}})
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil))
	if body := rec.Body.String(); contains(body, "127.0.0.1") {
		t.Errorf("readyz body %q exposes the cause", body)
	}
}

func TestJWKS(t *testing.T) {
	const jwks = `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"abc","kid":"k1","alg":"EdDSA","use":"sig"}]}`
	h := newHandler(t, httpapi.Config{JWKS: func() []byte { return []byte(jwks) }})
	res, body := get(t, h, "/.well-known/jwks.json")
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status = %d, want 200", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); ct != "application/jwk-set+json" {
		t.Errorf("Content-Type = %q, want application/jwk-set+json (RFC 7517 §8.5)", ct)
	}
	if cc := res.Header.Get("Cache-Control"); cc != "public, max-age=300" {
		t.Errorf("Cache-Control = %q, want public, max-age=300", cc)
	}
	if keys, _ := body["keys"].([]any); len(keys) != 1 {
		t.Errorf("keys = %v, want the one key", body["keys"])
	}
}

func TestMethodNotAllowed(t *testing.T) {
	h := newHandler(t, httpapi.Config{})
	for _, path := range []string{"/.well-known/jwks.json", "/.well-known/openid-configuration", "/.well-known/oauth-authorization-server", "/healthz"} {
		for _, method := range []string{http.MethodPost, http.MethodPut, http.MethodDelete} {
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(method, path, nil))
			if rec.Code != http.StatusMethodNotAllowed {
				t.Errorf("%s %s = %d, want 405", method, path, rec.Code)
			}
			if allow := rec.Header().Get("Allow"); !strings.Contains(allow, "GET") || !strings.Contains(allow, "HEAD") {
				t.Errorf("%s %s: Allow = %q, want GET and HEAD", method, path, allow)
			}
		}
	}
}

func contains(s, sub string) bool { return strings.Contains(s, sub) }

// TestMetrics: the metrics handler is served at GET /metrics when there is
// one, and the path is not found otherwise.
func TestMetrics(t *testing.T) {
	metrics := http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain; version=0.0.4")
		w.Write([]byte("authworker_up 1\n"))
	})
	tests := []struct {
		name     string
		metrics  http.Handler
		method   string
		wantCode int
	}{
		{"Served", metrics, http.MethodGet, http.StatusOK},
		{"NotConfigured", nil, http.MethodGet, http.StatusNotFound},
		{"PostRefused", metrics, http.MethodPost, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newHandler(t, httpapi.Config{Metrics: tt.metrics})
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, httptest.NewRequest(tt.method, httpapi.MetricsPath, nil))
			if rec.Code != tt.wantCode {
				t.Errorf("%s /metrics = %d, want %d", tt.method, rec.Code, tt.wantCode)
			}
			if tt.wantCode == http.StatusOK && rec.Body.String() != "authworker_up 1\n" {
				t.Errorf("body %q, want the metrics handler's", rec.Body.String())
			}
		})
	}
}

// TestJWKSURIMayNotTakeTheMetricsPath: /metrics is the metrics' path on
// the issuer's host, never the JWKS's.
func TestJWKSURIMayNotTakeTheMetricsPath(t *testing.T) {
	_, err := httpapi.NewHandler(httpapi.Config{
		Issuer: "https://auth.example.com", JWKSURI: "https://auth.example.com/metrics",
		JWKS: func() []byte { return []byte(`{"keys":[]}`) },
	})
	if err == nil {
		t.Error("a jwks_uri at /metrics on the issuer's host was accepted")
	}
}
