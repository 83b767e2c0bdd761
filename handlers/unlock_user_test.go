package handlers_test

import (
	"context"
	"slices"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// TestUnlockUser: the throttle forgets the failures and locks of the
// user's address, and nothing is written to the database; the user must
// exist.
func TestUnlockUser(t *testing.T) {
	tests := []struct {
		name         string
		user         domain.UserID
		throttleDown bool
		wantCode     domain.Code
		wantUnlocked []domain.Email
	}{
		{"OK", adaID, false, "", []domain.Email{"ada@example.com"}},
		{"Disabled", doraID, false, "", []domain.Email{"dora@example.com"}},
		{"UnknownUser", adminUnknownID, false, domain.CodeNotFound, nil},
		{"MalformedUserID", "ada", false, domain.CodeNotFound, nil},
		{"ThrottleDown", adaID, true, domain.CodeUnavailable, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newAdminFixture(t)
			f.throttle.down = tt.throttleDown
			before := f.snapshots(t)
			got, err := handlers.NewUnlockUserHandler(f.deps(), adminConfig).Handle(context.Background(),
				handlers.UnlockUser{UserID: tt.user, Client: adminClient})
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			if got != (handlers.Done{}) {
				t.Errorf("result = %+v, want Done", got)
			}
			if unlocked := f.throttle.unlocks(); !slices.Equal(unlocked, tt.wantUnlocked) {
				t.Errorf("throttle unlocked %v, want %v", unlocked, tt.wantUnlocked)
			}
			if f.work.calls != 0 {
				t.Errorf("units of work = %d, want 0: unlocking writes nothing to the database", f.work.calls)
			}
			if after := f.snapshots(t); after != before {
				t.Errorf("users changed from %+v to %+v", before, after)
			}
		})
	}
}
