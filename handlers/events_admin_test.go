package handlers_test

import (
	"context"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// adminOpNamed returns the administration operation of adminOps with the
// name.
func adminOpNamed(t *testing.T, name string) adminOp {
	t.Helper()
	for _, op := range adminOps {
		if op.name == name {
			return op
		}
	}
	t.Fatalf("no administration operation %q", name)
	return adminOp{}
}

// TestAdminEvents: each administration operation reports what it changed,
// at the administrator's now: disabling an account reports it when it was
// not disabled before, and each session it ended; enabling reports it when
// it was disabled; unlocking reports the unlock; deleting reports each
// session it ended and then, last, the deletion. What changes nothing, or
// fails, reports nothing.
func TestAdminEvents(t *testing.T) {
	const doraSession = domain.SessionID("00000000-0000-7000-8000-0000000d0001")
	tests := []struct {
		op       string
		name     string
		prepare  func(*testing.T, *adminFixture)
		user     domain.UserID
		wantCode domain.Code
		// want is given the fixture, whose sessions it names.
		want func(f *adminFixture) []wantEvent
	}{
		{"DisableUser", "Active", nil, adaID, "", func(f *adminFixture) []wantEvent {
			return append([]wantEvent{{adaID, domain.AccountDisabled{}, true}},
				revokedEvents(adaID, domain.RevokedByAccountDisabled, f.adaSessions...)...)
		}},
		{"DisableUser", "DisabledWithARacedSession", func(t *testing.T, f *adminFixture) {
			f.openSession(t, doraSession, doraID)
		}, doraID, "", func(*adminFixture) []wantEvent {
			return revokedEvents(doraID, domain.RevokedByAccountDisabled, doraSession)
		}},
		{"DisableUser", "Disabled", nil, doraID, "", nil},
		{"DisableUser", "DisabledTwice", func(t *testing.T, f *adminFixture) {
			if err := adminOpNamed(t, "DisableUser").run(context.Background(), f.deps(), adminConfig, adaID, adminClient); err != nil {
				t.Fatal(err)
			}
			f.events.reset()
		}, adaID, "", nil},
		{"DisableUser", "UnknownUser", nil, adminUnknownID, domain.CodeNotFound, nil},
		{"EnableUser", "Disabled", nil, doraID, "", func(*adminFixture) []wantEvent {
			return []wantEvent{{doraID, domain.AccountEnabled{}, true}}
		}},
		{"EnableUser", "Active", nil, adaID, "", nil},
		{"EnableUser", "UnknownUser", nil, adminUnknownID, domain.CodeNotFound, nil},
		{"UnlockUser", "Active", nil, adaID, "", func(*adminFixture) []wantEvent {
			return []wantEvent{{adaID, domain.AccountUnlocked{}, false}} // no unit of work: nothing is written
		}},
		{"UnlockUser", "Disabled", nil, doraID, "", func(*adminFixture) []wantEvent {
			return []wantEvent{{doraID, domain.AccountUnlocked{}, false}}
		}},
		{"UnlockUser", "UnknownUser", nil, adminUnknownID, domain.CodeNotFound, nil},
		{"UnlockUser", "ThrottleDown", func(_ *testing.T, f *adminFixture) { f.throttle.down = true }, adaID, domain.CodeUnavailable, nil},
		{"DeleteUser", "WithSessions", nil, adaID, "", func(f *adminFixture) []wantEvent {
			return append(revokedEvents(adaID, domain.RevokedByAccountDeleted, f.adaSessions...),
				wantEvent{adaID, domain.AccountDeleted{}, true})
		}},
		{"DeleteUser", "WithoutSessions", nil, doraID, "", func(*adminFixture) []wantEvent {
			return []wantEvent{{doraID, domain.AccountDeleted{}, true}}
		}},
		{"DeleteUser", "DeletedBefore", func(t *testing.T, f *adminFixture) {
			if err := adminOpNamed(t, "DeleteUser").run(context.Background(), f.deps(), adminConfig, adaID, adminClient); err != nil {
				t.Fatal(err)
			}
			f.events.reset()
		}, adaID, domain.CodeNotFound, nil},
		{"DeleteUser", "UnknownUser", nil, adminUnknownID, domain.CodeNotFound, nil},
	}
	for _, tt := range tests {
		t.Run(tt.op+"/"+tt.name, func(t *testing.T) {
			f := newAdminFixture(t)
			if tt.prepare != nil {
				tt.prepare(t, f)
			}
			err := adminOpNamed(t, tt.op).run(context.Background(), f.deps(), adminConfig, tt.user, adminClient)
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			var want []wantEvent
			if tt.want != nil {
				want = tt.want(f)
			}
			checkEvents(t, f.events, adminNow, want, goodPassword)
			if tt.op == "DeleteUser" && len(want) > 0 {
				got := f.events.all()
				if _, ok := got[len(got)-1].Event.Payload.(domain.AccountDeleted); !ok {
					t.Errorf("last event %v, want AccountDeleted last", got[len(got)-1])
				}
			}
		})
	}
}

// TestAdminEventsRefused: a client that may not administer accounts gets
// nothing done, and nothing reported.
func TestAdminEventsRefused(t *testing.T) {
	for _, op := range adminOps {
		for _, user := range []domain.UserID{adaID, doraID, adminUnknownID} {
			t.Run(op.name+"/"+string(user), func(t *testing.T) {
				f := newAdminFixture(t)
				err := op.run(context.Background(), f.deps(), adminConfig, user, webClient)
				if code := domain.ErrorCode(err); code != domain.CodeUnauthorized {
					t.Fatalf("error = %v, want %q", err, domain.CodeUnauthorized)
				}
				checkEvents(t, f.events, adminNow, nil)
			})
		}
	}
}

// TestAdminEventsWithoutAdmins: with no administrators configured, even the
// operators' console gets nothing reported.
func TestAdminEventsWithoutAdmins(t *testing.T) {
	for _, op := range adminOps {
		t.Run(op.name, func(t *testing.T) {
			f := newAdminFixture(t)
			err := op.run(context.Background(), f.deps(), handlers.AdminConfig{}, op.target, adminClient)
			if code := domain.ErrorCode(err); code != domain.CodeUnauthorized {
				t.Fatalf("error = %v, want %q", err, domain.CodeUnauthorized)
			}
			checkEvents(t, f.events, adminNow, nil)
		})
	}
}
