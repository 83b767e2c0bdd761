package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/tokens"
)

func TestVerify(t *testing.T) {
	issuer, err := tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), tokens.Config{
		Issuer: "https://auth.test", Audience: []string{"api"}, KeyEncryptionKey: make([]byte, 32),
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.Write(issuer.JWKS()) }))
	defer srv.Close()
	at, err := issuer.IssueAccessToken(context.Background(), domain.AccessClaims{UserID: "u1", SessionID: "s1", ClientID: "web"})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name     string
		issuer   string
		audience string
		wantErr  bool
	}{
		{"Valid", "https://auth.test", "api", false},
		{"OtherAudience", "https://auth.test", "billing", true},
		{"OtherIssuer", "https://evil.test", "api", true},
		{"EmptyIssuerRefused", "", "api", true},
		{"EmptyAudienceRefused", "https://auth.test", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := run(context.Background(), []string{"verify", "-token", at.Token, "-jwks", srv.URL, "-issuer", tt.issuer, "-audience", tt.audience}, nil, &out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("run verify: %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			var claims struct{ UserID, SessionID, ClientID string }
			if err := json.Unmarshal(out.Bytes(), &claims); err != nil {
				t.Fatal(err)
			}
			if claims.UserID != "u1" || claims.SessionID != "s1" || claims.ClientID != "web" {
				t.Errorf("printed claims %+v, want u1/s1/web", claims)
			}
		})
	}
}

func TestUsageErrors(t *testing.T) {
	tests := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"NoCommand", nil, "", "a command is required"},
		{"UnknownCommand", []string{"frobnicate"}, "", "unknown command"},
		{"LoginWithoutEmail", []string{"login"}, "pw\n", "-email is required"},
		{"LoginWithoutPassword", []string{"login", "-email", "ada@example.com"}, "", "standard input"},
		{"VerifyWithoutToken", []string{"verify"}, "", "-token is required"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := run(context.Background(), tt.args, strings.NewReader(tt.stdin), &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("run(%v) = %v, want an error containing %q", tt.args, err, tt.want)
			}
		})
	}
}

func TestReadPasswordTakesFirstLine(t *testing.T) {
	got, err := readPassword(strings.NewReader("plum kayak violet thunder\r\nsecond line\n"))
	if err != nil || got != "plum kayak violet thunder" {
		t.Errorf("readPassword = %q, %v; want the first line without its line ending", got, err)
	}
}
