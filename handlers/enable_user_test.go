package handlers_test

import (
	"context"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

func enableUser(user domain.UserID) handlers.EnableUser {
	return handlers.EnableUser{UserID: user, Client: adminClient}
}

func TestEnableUser(t *testing.T) {
	tests := []struct {
		name     string
		user     domain.UserID
		wantCode domain.Code
	}{
		{"OK", doraID, ""},
		{"AlreadyActive", adaID, ""},
		{"UnknownUser", adminUnknownID, domain.CodeNotFound},
		{"MalformedUserID", "dora", domain.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFixture(t)
			got, err := handlers.NewEnableUserHandler(f.deps(), adminConfig).Handle(context.Background(), enableUser(tt.user))
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			if got != (handlers.Done{}) {
				t.Errorf("result = %+v, want Done", got)
			}
			if tt.wantCode != "" {
				return
			}
			if !f.user(t, tt.user).CanLogIn() {
				t.Error("an enabled user cannot log in")
			}
			if f.work.calls != 1 {
				t.Errorf("units of work = %d, want 1", f.work.calls)
			}
		})
	}
}

// TestEnableUserRestoresDisabled: an account disabled by an administrator
// can log in again once enabled; its revoked sessions stay revoked.
func TestEnableUserRestoresDisabled(t *testing.T) {
	f := newAdminFixture(t)
	if _, err := handlers.NewDisableUserHandler(f.deps(), adminConfig).Handle(context.Background(), disableUser(adaID)); err != nil {
		t.Fatal(err)
	}
	if _, err := handlers.NewEnableUserHandler(f.deps(), adminConfig).Handle(context.Background(), enableUser(adaID)); err != nil {
		t.Fatal(err)
	}
	if !f.user(t, adaID).CanLogIn() {
		t.Error("ada cannot log in after being enabled")
	}
	if got := f.revoked(t, f.adaSessions...); !got[0] || !got[1] {
		t.Errorf("ada's sessions revoked: %v, want both still revoked", got)
	}
}

// TestEnableUserIsIdempotent: enabling an active account changes nothing
// and succeeds.
func TestEnableUserIsIdempotent(t *testing.T) {
	f := newAdminFixture(t)
	before := f.user(t, adaID).Snapshot()
	if _, err := handlers.NewEnableUserHandler(f.deps(), adminConfig).Handle(context.Background(), enableUser(adaID)); err != nil {
		t.Fatal(err)
	}
	if after := f.user(t, adaID).Snapshot(); after != before {
		t.Errorf("active user changed from %+v to %+v", before, after)
	}
}
