package schemas

import (
	"reflect"
	"testing"
	"time"

	"github.com/linkedin/goavro/v2"
)

// TestGoavroSingleObjectEncoding: a message of each envelope written by
// goavro's own single-object encoder, whose fingerprint differs from the
// specification's for schemas with logical types (goavro issue #174), is
// read as the same schema.
func TestGoavroSingleObjectEncoding(t *testing.T) {
	at := time.UnixMilli(1_800_000_000_000).UTC()
	tests := map[Envelope]struct {
		native map[string]any
		want   any
	}{
		EnvelopeRequest: {
			native: map[string]any{
				"requestId": "r-goavro",
				"deadline":  goavro.Union("long.timestamp-millis", at),
				"client":    map[string]any{"clientId": "go-service", "ip": goavro.Union("string", "192.0.2.1"), "userAgent": nil},
				"operation": goavro.Union("authworker.Login", map[string]any{"email": "ada@example.com", "password": "plum kayak violet thunder"}),
			},
			want: &Request{
				RequestID: "r-goavro", Deadline: &at,
				Client:    ClientMetadata{ClientID: "go-service", IP: ptr("192.0.2.1")},
				Operation: &Login{Email: "ada@example.com", Password: "plum kayak violet thunder"},
			},
		},
		EnvelopeResponse: {
			native: map[string]any{
				"requestId": "r-goavro",
				"status":    "OK",
				"result": goavro.Union("authworker.LoginResult", map[string]any{
					"userId": "u-1", "sessionId": "s-1", "accessToken": "at", "accessTokenExpiresAt": at,
					"refreshToken": "rt", "refreshTokenExpiresAt": at,
				}),
			},
			want: &Response{RequestID: "r-goavro", Status: StatusOK, Result: &LoginResult{
				UserID: "u-1", SessionID: "s-1", AccessToken: "at", AccessTokenExpiresAt: at, RefreshToken: "rt", RefreshTokenExpiresAt: at,
			}},
		},
		EnvelopeEvent: {
			native: map[string]any{
				"eventId": "e-goavro", "occurredAt": at, "requestId": nil, "userId": goavro.Union("string", "u-1"),
				"clientId": nil, "ip": nil,
				"payload": goavro.Union("authworker.LoginFailed", map[string]any{"reason": "LOCKED"}),
			},
			want: &Event{EventID: "e-goavro", OccurredAt: at, UserID: ptr("u-1"), Payload: &LoginFailed{Reason: LoginFailureLocked}},
		},
		EnvelopeNotification: {
			native: map[string]any{
				"notificationId": "n-goavro", "occurredAt": at, "userId": "u-1", "email": "ada@example.com",
				"clientId": goavro.Union("string", "web"), "kind": "PASSWORD_RESET",
				"code": goavro.Union("string", "493817"), "expiresAt": goavro.Union("long.timestamp-millis", at),
			},
			want: &Notification{
				NotificationID: "n-goavro", OccurredAt: at, UserID: "u-1", Email: "ada@example.com", ClientID: ptr("web"),
				Kind: NotificationPasswordReset, Code: ptr("493817"), ExpiresAt: &at,
			},
		},
	}
	c, err := NewCodec(Config{})
	if err != nil {
		t.Fatal(err)
	}
	for _, env := range Envelopes() {
		t.Run(env.String(), func(t *testing.T) {
			tt, ok := tests[env]
			if !ok {
				t.Fatalf("no goavro message for %s", env)
			}
			src, err := Source(env)
			if err != nil {
				t.Fatal(err)
			}
			g, err := goavro.NewCodec(string(src))
			if err != nil {
				t.Fatal(err)
			}
			value, err := g.SingleFromNative(nil, tt.native)
			if err != nil {
				t.Fatal(err)
			}
			s, err := Parse(env)
			if err != nil {
				t.Fatal(err)
			}
			if spec := Header(s); string(value[:HeaderSize]) == string(spec[:]) {
				t.Fatal("goavro wrote the specification's fingerprint; this test no longer covers the alias")
			}
			got, err := decodeEnvelope(c, env, value)
			if err != nil {
				t.Fatalf("decode goavro's message: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want goavro's %+v", got, tt.want)
			}
		})
	}
}
