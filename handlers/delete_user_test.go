package handlers_test

import (
	"context"
	"slices"
	"strings"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

func deleteUser(user domain.UserID) handlers.DeleteUser {
	return handlers.DeleteUser{UserID: user, Client: adminClient}
}

func TestDeleteUser(t *testing.T) {
	tests := []struct {
		name     string
		user     domain.UserID
		wantCode domain.Code
	}{
		{"OK", adaID, ""},
		{"Disabled", doraID, ""},
		{"UnknownUser", adminUnknownID, domain.CodeNotFound},
		{"MalformedUserID", "ada", domain.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFixture(t)
			got, err := handlers.NewDeleteUserHandler(f.deps(), adminConfig).Handle(context.Background(), deleteUser(tt.user))
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
			if _, err := f.users.UserByID(context.Background(), tt.user); domain.ErrorCode(err) != domain.CodeNotFound {
				t.Errorf("UserByID after delete: %v, want not found", err)
			}
			if f.work.calls != 1 {
				t.Errorf("units of work = %d, want 1", f.work.calls)
			}
		})
	}
}

// TestDeleteUserErasesAndEndsSessions: the account's personal data is
// erased, so its address is free for a new account, and its sessions are
// revoked, for the recorded reason, and put on the revocation list; other
// users' sessions live on.
func TestDeleteUserErasesAndEndsSessions(t *testing.T) {
	f := newAdminFixture(t)
	if _, err := handlers.NewDeleteUserHandler(f.deps(), adminConfig).Handle(context.Background(), deleteUser(adaID)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.users.UserByEmail(context.Background(), "ada@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("UserByEmail after delete: %v, want not found", err)
	}
	again, err := domain.NewUser("00000000-0000-7000-8000-0000000a0a0a", "ada@example.com", "hash:"+goodPassword, adminNow)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.users.CreateUser(context.Background(), again); err != nil {
		t.Errorf("registering the deleted account's address: %v, want it free", err)
	}
	if got := f.revoked(t, f.adaSessions...); !got[0] || !got[1] {
		t.Errorf("ada's sessions revoked: %v, want both", got)
	}
	if got := f.revoked(t, f.bobSession); got[0] {
		t.Error("another user's session was revoked")
	}
	listed := f.revocations.listed()
	slices.Sort(listed)
	if !slices.Equal(listed, f.adaSessions) {
		t.Errorf("revocation list got %v, want %v", listed, f.adaSessions)
	}
	if got, want := f.sessions.revokeReasons(), []string{domain.RevokedByAccountDeleted}; !slices.Equal(got, want) {
		t.Errorf("revocation reasons = %q, want %q", got, want)
	}
}

// TestDeleteUserDeleted: a deleted account is gone for administration too:
// deleting it again, and unlocking it, answer CodeNotFound.
func TestDeleteUserDeleted(t *testing.T) {
	f := newAdminFixture(t)
	h := handlers.NewDeleteUserHandler(f.deps(), adminConfig)
	if _, err := h.Handle(context.Background(), deleteUser(adaID)); err != nil {
		t.Fatal(err)
	}
	listed := len(f.revocations.listed())
	if _, err := h.Handle(context.Background(), deleteUser(adaID)); domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("deleting again: %v, want %q", err, domain.CodeNotFound)
	}
	if got := len(f.revocations.listed()); got != listed {
		t.Errorf("deleting again listed %d more sessions, want none", got-listed)
	}
	_, err := handlers.NewUnlockUserHandler(f.deps(), adminConfig).Handle(context.Background(), handlers.UnlockUser{UserID: adaID, Client: adminClient})
	if domain.ErrorCode(err) != domain.CodeNotFound {
		t.Errorf("unlocking a deleted account: %v, want %q", err, domain.CodeNotFound)
	}
}

// TestDeleteUserCommitFails: when the unit of work fails, the revocations
// were not stored, so none reach the list.
func TestDeleteUserCommitFails(t *testing.T) {
	f := newAdminFixture(t)
	deps := f.deps()
	deps.Work = &failingWork{}
	_, err := handlers.NewDeleteUserHandler(deps, adminConfig).Handle(context.Background(), deleteUser(adaID))
	if code := domain.ErrorCode(err); code != domain.CodeUnavailable {
		t.Fatalf("error = %v, want %q", err, domain.CodeUnavailable)
	}
	if got := f.revocations.listed(); len(got) != 0 {
		t.Errorf("revocation list got %v, want nothing", got)
	}
}

// TestDeleteUserRevocationListDown: the account is deleted all the same,
// and the failure logged for the list's next rebuild to repair.
func TestDeleteUserRevocationListDown(t *testing.T) {
	f := newAdminFixture(t)
	f.revocations.down = true
	if _, err := handlers.NewDeleteUserHandler(f.deps(), adminConfig).Handle(context.Background(), deleteUser(adaID)); err != nil {
		t.Fatalf("error = %v, want Done", err)
	}
	if got := f.revoked(t, f.adaSessions...); !got[0] || !got[1] {
		t.Errorf("ada's sessions revoked: %v, want both", got)
	}
	if logs := f.logs.String(); !strings.Contains(logs, "level=WARN") || !strings.Contains(logs, "revocation list") {
		t.Errorf("logs %q: want a warning about the revocation list", logs)
	}
}
