package handlers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

func disableUser(user domain.UserID) handlers.DisableUser {
	return handlers.DisableUser{UserID: user, Client: adminClient}
}

func TestDisableUser(t *testing.T) {
	tests := []struct {
		name     string
		user     domain.UserID
		wantCode domain.Code
	}{
		{"OK", adaID, ""},
		{"AlreadyDisabled", doraID, ""},
		{"UnknownUser", adminUnknownID, domain.CodeNotFound},
		{"MalformedUserID", "ada", domain.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFixture(t)
			got, err := handlers.NewDisableUserHandler(f.deps(), adminConfig).Handle(context.Background(), disableUser(tt.user))
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			if got != (handlers.Done{}) {
				t.Errorf("result = %+v, want Done", got)
			}
			if tt.wantCode != "" {
				if listed := f.revocations.listed(); len(listed) != 0 {
					t.Errorf("revocation list got %v, want nothing", listed)
				}
				return
			}
			if f.user(t, tt.user).CanLogIn() {
				t.Error("a disabled user can log in")
			}
			if f.work.calls != 1 {
				t.Errorf("units of work = %d, want 1", f.work.calls)
			}
		})
	}
}

// TestDisableUserEndsSessions: the user's live sessions are revoked in the
// store, in the unit of work, and then put on the revocation list; other
// users' sessions live on.
func TestDisableUserEndsSessions(t *testing.T) {
	f := newAdminFixture(t)
	if _, err := handlers.NewDisableUserHandler(f.deps(), adminConfig).Handle(context.Background(), disableUser(adaID)); err != nil {
		t.Fatal(err)
	}
	if got := f.revoked(t, f.adaSessions...); !got[0] || !got[1] {
		t.Errorf("ada's sessions revoked: %v, want both", got)
	}
	if got := f.revoked(t, f.bobSession); got[0] {
		t.Error("another user's session was revoked")
	}
	got := f.revocations.listed()
	slices.Sort(got)
	if !slices.Equal(got, f.adaSessions) {
		t.Errorf("revocation list got %v, want %v", got, f.adaSessions)
	}
	if got, want := f.sessions.revokeReasons(), []string{domain.RevokedByAccountDisabled}; !slices.Equal(got, want) {
		t.Errorf("revocation reasons = %q, want %q", got, want)
	}
}

// TestDisableUserIsIdempotent: disabling a disabled account changes
// nothing and succeeds, so a repeated request gets the same answer.
func TestDisableUserIsIdempotent(t *testing.T) {
	f := newAdminFixture(t)
	before := f.user(t, doraID).Snapshot()
	h := handlers.NewDisableUserHandler(f.deps(), adminConfig)
	if _, err := h.Handle(context.Background(), disableUser(doraID)); err != nil {
		t.Fatal(err)
	}
	if after := f.user(t, doraID).Snapshot(); after != before {
		t.Errorf("disabled user changed from %+v to %+v", before, after)
	}
	if _, err := h.Handle(context.Background(), disableUser(adaID)); err != nil {
		t.Fatal(err)
	}
	once := f.user(t, adaID).Snapshot()
	if _, err := h.Handle(context.Background(), disableUser(adaID)); err != nil {
		t.Fatalf("disabling again: %v, want Done", err)
	}
	if twice := f.user(t, adaID).Snapshot(); twice != once {
		t.Errorf("disabling again changed the user from %+v to %+v", once, twice)
	}
}

// TestDisableUserCommitFails: when the unit of work fails, the revocations
// were not stored, so none reach the list.
func TestDisableUserCommitFails(t *testing.T) {
	f := newAdminFixture(t)
	deps := f.deps()
	deps.Work = &failingWork{}
	_, err := handlers.NewDisableUserHandler(deps, adminConfig).Handle(context.Background(), disableUser(adaID))
	if code := domain.ErrorCode(err); code != domain.CodeUnavailable {
		t.Fatalf("error = %v, want %q", err, domain.CodeUnavailable)
	}
	if got := f.revocations.listed(); len(got) != 0 {
		t.Errorf("revocation list got %v, want nothing", got)
	}
}

// TestDisableUserRevocationListDown: the list is a fast copy; the
// revocations are stored, so the account is disabled all the same and the
// failure is logged for the list's next rebuild to repair.
func TestDisableUserRevocationListDown(t *testing.T) {
	f := newAdminFixture(t)
	f.revocations.down = true
	if _, err := handlers.NewDisableUserHandler(f.deps(), adminConfig).Handle(context.Background(), disableUser(adaID)); err != nil {
		t.Fatalf("error = %v, want Done", err)
	}
	if got := f.revoked(t, f.adaSessions...); !got[0] || !got[1] {
		t.Errorf("ada's sessions revoked: %v, want both", got)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "revocation list") {
		t.Errorf("logs %q: want a warning about the revocation list", logs)
	}
}
