package handlers_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// TestLoginRequireVerifiedEmail: with RequireVerifiedEmail, only the right
// password learns that the address is unverified, and it opens no session;
// the throttle still counts the attempt as a success, since the password
// was right. Without the setting, an unverified address logs in.
func TestLoginRequireVerifiedEmail(t *testing.T) {
	tests := []struct {
		name      string
		require   bool
		verified  bool
		password  string
		wantMsg   string // "" for a session
		wantField string
		wantUnits int
	}{
		{"Unverified", true, false, goodPassword, "email address is not verified", "email", 0},
		{"UnverifiedWrongPassword", true, false, "not the password at all", "invalid email or password", "", 0},
		{"Verified", true, true, goodPassword, "", "", 1},
		{"NotRequired", false, false, goodPassword, "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newLoginFixture(t)
			if tt.verified {
				if err := f.users.UpdateUser(context.Background(), adaID, func(u *domain.User) error {
					u.VerifyEmail(testNow)
					return nil
				}); err != nil {
					t.Fatal(err)
				}
			}
			f.throttle.failures["ada@example.com"] = 2
			h := handlers.NewLoginHandler(handlers.LoginDeps{
				Work: f.work, Users: f.users, Sessions: f.sessions, Hasher: f.hasher, Throttle: f.throttle,
				Tokens: fakeIssuer{now: fixedClock}, Events: f.events, NewID: sequentialIDs(), Now: fixedClock,
				Random: bytes.NewReader(bytes.Repeat([]byte{42}, 1024)), Sleep: f.sleeps.sleep,
			}, handlers.LoginConfig{RequireVerifiedEmail: tt.require})

			got, err := h.Handle(context.Background(), login("ada@example.com", tt.password))
			if tt.wantMsg == "" {
				if err != nil {
					t.Fatalf("error = %v, want a session", err)
				}
				if got.SessionID == "" {
					t.Error("no session id")
				}
			} else {
				e, ok := errors.AsType[*domain.Error](err)
				if !ok || e.Code != domain.CodeUnauthorized || e.Message != tt.wantMsg || e.Field != tt.wantField {
					t.Fatalf("error = %#v, want unauthorized %q on field %q", err, tt.wantMsg, tt.wantField)
				}
				if got != (handlers.LoginResult{}) {
					t.Errorf("result = %+v, want none", got)
				}
			}
			if f.work.calls != tt.wantUnits {
				t.Errorf("units of work = %d, want %d (sessions are written only there)", f.work.calls, tt.wantUnits)
			}
			wantFailures := 0
			if tt.password != goodPassword {
				wantFailures = 3
			}
			if got := f.throttle.failuresOf("ada@example.com"); got != wantFailures {
				t.Errorf("recorded failures = %d, want %d", got, wantFailures)
			}
		})
	}
}
