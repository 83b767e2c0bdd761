package main

import (
	"bufio"
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
			err := run(context.Background(), []string{"verify", "-jwks", srv.URL, "-issuer", tt.issuer, "-audience", tt.audience}, strings.NewReader(at.Token+"\n"), &out)
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
		{"VerifyWithoutToken", []string{"verify"}, "", "access token is read from standard input"},
		{"RefreshWithoutToken", []string{"refresh"}, "", "refresh token is read from standard input"},
		{"ChangePasswordMissingLines", []string{"change-password"}, "token\ncurrent\n", "new password is read from standard input"},
		{"ResetWithoutEmail", []string{"reset-password"}, "code\npw\n", "-email is required"},
		{"UsersWithoutAction", []string{"users"}, "", "disable, enable, unlock or delete is required"},
		{"UsersUnknownAction", []string{"users", "promote", "-user-id", "x"}, "", "unknown action"},
		{"UsersWithoutID", []string{"users", "disable"}, "", "-user-id is required"},
		{"EventsWithoutAction", []string{"events"}, "", "tail is required"},
		{"EventsUnknownAction", []string{"events", "head"}, "", "unknown action"},
		{"EventsTailUnknownType", []string{"events", "tail", "-type", "LoginFailed,Frobnicated"}, "", "unknown event type"},
		{"EventsTailFromMiddle", []string{"events", "tail", "-from", "middle"}, "", "-from must be beginning or end"},
		{"EventsTailNegativeMax", []string{"events", "tail", "-max", "-1"}, "", "-max must not be negative"},
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

func TestSecretsAreLinesOfStandardInput(t *testing.T) {
	e := &env{stdin: bufio.NewReader(strings.NewReader("plum kayak violet thunder\r\nsecond line\n"))}
	first, err := e.secret("password")
	if err != nil || first != "plum kayak violet thunder" {
		t.Errorf("first secret = %q, %v; want the first line without its line ending", first, err)
	}
	second, err := e.secret("code")
	if err != nil || second != "second line" {
		t.Errorf("second secret = %q, %v; want the second line", second, err)
	}
	if _, err := e.secret("new password"); err == nil || !strings.Contains(err.Error(), "new password") {
		t.Errorf("third secret: %v, want an error naming it", err)
	}
}
