package schemas

import (
	"fmt"
	"strings"
	"testing"

	"github.com/hamba/avro/v2"
)

// TestFormattingRedactsSecrets prints every record that holds a password, a
// token or a code, alone and inside its envelope, with every verb a log
// line might use, and checks the secret never shows while the rest does.
func TestFormattingRedactsSecrets(t *testing.T) {
	const secret = "hunter2-SECRET"
	s := ptr(secret)
	tests := []struct {
		name string
		v    any
		show string // a field that is not secret and must print
	}{
		{"Register", &Register{Email: "ada@example.com", Password: secret}, "ada@example.com"},
		{"Login", &Login{Email: "ada@example.com", Password: secret}, "ada@example.com"},
		{"LoginResult", &LoginResult{UserID: "u-1", AccessToken: secret, RefreshToken: secret}, "u-1"},
		{"Refresh", &Refresh{RefreshToken: secret}, "Refresh"},
		{"LogoutRefreshToken", &Logout{RefreshToken: s}, "AccessToken:nil"},
		{"LogoutAccessToken", &Logout{AccessToken: s}, "RefreshToken:nil"},
		{"LogoutAll", &LogoutAll{AccessToken: secret}, "LogoutAll"},
		{"Introspect", &Introspect{Token: secret, TokenTypeHint: ptr("refresh_token")}, "refresh_token"},
		{"ChangePassword", &ChangePassword{AccessToken: secret, CurrentPassword: secret, NewPassword: secret}, "ChangePassword"},
		{"ResetPassword", &ResetPassword{Email: "ada@example.com", Code: secret, NewPassword: secret}, "ada@example.com"},
		{"VerifyEmail", &VerifyEmail{Email: "ada@example.com", Code: secret}, "ada@example.com"},
		{"Notification", &Notification{UserID: "u-1", Kind: NotificationPasswordReset, Code: s}, "PASSWORD_RESET"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wrapped := []any{tt.v}
			if op, ok := tt.v.(Operation); ok {
				wrapped = append(wrapped, &Request{Operation: op}, Request{Operation: op})
			}
			if res, ok := tt.v.(Result); ok {
				wrapped = append(wrapped, &Response{Status: StatusOK, Result: res}, Response{Status: StatusOK, Result: res})
			}
			for _, v := range wrapped {
				for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
					got := fmt.Sprintf(verb, v)
					if strings.Contains(got, "hunter2") {
						t.Errorf("%s of %T leaks the secret: %s", verb, v, got)
					}
					if !strings.Contains(got, tt.show) {
						t.Errorf("%s of %T: got %s, want it to show %q", verb, v, got, tt.show)
					}
				}
			}
		})
	}
}

// TestEventsCarryNoSecrets: auth.events is read by every consumer and kept
// long, so no field of an event, at any depth, is named for a password, a
// token, a code or a secret.
func TestEventsCarryNoSecrets(t *testing.T) {
	s, err := Parse(EnvelopeEvent)
	if err != nil {
		t.Fatal(err)
	}
	var fields []string
	var walk func(avro.Schema)
	walk = func(s avro.Schema) {
		switch s := s.(type) {
		case *avro.RecordSchema:
			for _, f := range s.Fields() {
				fields = append(fields, s.Name()+"."+f.Name())
				walk(f.Type())
			}
		case *avro.UnionSchema:
			for _, m := range s.Types() {
				walk(m)
			}
		case *avro.ArraySchema:
			walk(s.Items())
		case *avro.MapSchema:
			walk(s.Values())
		}
	}
	walk(s)
	if len(fields) < 10 {
		t.Fatalf("found only %d fields: %q", len(fields), fields)
	}
	for _, f := range fields {
		lower := strings.ToLower(f[strings.IndexByte(f, '.')+1:])
		for _, word := range []string{"password", "token", "code", "secret"} {
			if strings.Contains(lower, word) {
				t.Errorf("event field %s is named for a %s", f, word)
			}
		}
	}
}
