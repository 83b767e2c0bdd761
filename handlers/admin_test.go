package handlers_test

import (
	"context"
	"crypto/rand"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
)

const (
	adminBobID     = domain.UserID("00000000-0000-7000-8000-0000000b0b00")
	adminUnknownID = domain.UserID("00000000-0000-7000-8000-00000000dead")
)

// adminNow is when administrators act: later than the accounts were made,
// so that a write shows in UpdatedAt.
var adminNow = testNow.Add(time.Hour)

var (
	adminConfig = handlers.AdminConfig{Clients: []string{"ops-console", "support-service"}}
	adminClient = domain.Client{ID: "ops-console", IP: "198.51.100.7", UserAgent: "authctl"}
	webClient   = domain.Client{ID: "web", IP: "192.0.2.1", UserAgent: "test"}
)

// adminFixture holds in-memory stores with ada@example.com (active, two
// live sessions), bob@example.com (active, one live session) and
// dora@example.com (disabled), and records what administration does outside
// them.
type adminFixture struct {
	users       *inmem.UserRepository
	sessions    *reasonSessions
	work        *fakeWork
	events      *recordingEvents
	revocations *recordingRevocations
	throttle    *unlockThrottle
	logs        *logBuffer
	adaSessions []domain.SessionID
	bobSession  domain.SessionID
}

func newAdminFixture(t *testing.T) *adminFixture {
	t.Helper()
	users := inmem.NewUserRepository()
	work := &fakeWork{}
	f := &adminFixture{
		users:       users,
		sessions:    &reasonSessions{SessionRepository: inmem.NewSessionRepository(users)},
		work:        work,
		events:      &recordingEvents{work: work},
		revocations: &recordingRevocations{},
		throttle:    &unlockThrottle{},
		logs:        &logBuffer{},
	}
	for _, u := range []struct {
		id       domain.UserID
		email    domain.Email
		disabled bool
	}{
		{adaID, "ada@example.com", false},
		{adminBobID, "bob@example.com", false},
		{doraID, "dora@example.com", true},
	} {
		user, err := domain.NewUser(u.id, u.email, "hash:"+goodPassword, testNow)
		if err != nil {
			t.Fatal(err)
		}
		if u.disabled {
			user.Disable(testNow)
		}
		if err := f.users.CreateUser(context.Background(), user); err != nil {
			t.Fatal(err)
		}
	}
	f.adaSessions = []domain.SessionID{
		f.openSession(t, "00000000-0000-7000-8000-0000000a0001", adaID),
		f.openSession(t, "00000000-0000-7000-8000-0000000a0002", adaID),
	}
	f.bobSession = f.openSession(t, "00000000-0000-7000-8000-0000000b0001", adminBobID)
	return f
}

// openSession stores a live session of user, as a login would.
func (f *adminFixture) openSession(t *testing.T, id domain.SessionID, user domain.UserID) domain.SessionID {
	t.Helper()
	s, err := domain.NewSession(id, user, webClient, testNow, 30*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	_, refresh, err := domain.NewRefreshToken(rand.Reader, s, testNow, 7*24*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.sessions.CreateSession(context.Background(), s, refresh); err != nil {
		t.Fatal(err)
	}
	return id
}

func (f *adminFixture) deps() handlers.AdminDeps {
	return handlers.AdminDeps{
		Work:        f.work,
		Users:       f.users,
		Sessions:    f.sessions,
		Revocations: f.revocations,
		Throttle:    f.throttle,
		Events:      f.events,
		Now:         func() time.Time { return adminNow },
		Logger:      f.logs.logger(),
	}
}

// user returns the stored user with the id, failing the test when there is
// none.
func (f *adminFixture) user(t *testing.T, id domain.UserID) *domain.User {
	t.Helper()
	u, err := f.users.UserByID(context.Background(), id)
	if err != nil {
		t.Fatalf("load user %s: %v", id, err)
	}
	return u
}

// snapshots returns the stored forms of ada, bob and dora, failing the test
// when one is gone.
func (f *adminFixture) snapshots(t *testing.T) [3]domain.UserSnapshot {
	t.Helper()
	return [3]domain.UserSnapshot{f.user(t, adaID).Snapshot(), f.user(t, adminBobID).Snapshot(), f.user(t, doraID).Snapshot()}
}

// revoked returns which of the sessions are revoked in the store.
func (f *adminFixture) revoked(t *testing.T, ids ...domain.SessionID) []bool {
	t.Helper()
	got := make([]bool, len(ids))
	for i, id := range ids {
		s, ok := f.sessions.Stored(id)
		if !ok {
			t.Fatalf("session %s not stored", id)
		}
		got[i] = s.Revoked()
	}
	return got
}

// adminOp runs one administration operation, built from deps and cfg, on
// user for client.
type adminOp struct {
	name string
	run  func(ctx context.Context, deps handlers.AdminDeps, cfg handlers.AdminConfig, user domain.UserID, client domain.Client) error
	// target is a user the operation succeeds on in a fresh fixture, and
	// wantLog what it logs then.
	target  domain.UserID
	wantLog string
}

var adminOps = []adminOp{
	{
		name: "DisableUser",
		run: func(ctx context.Context, deps handlers.AdminDeps, cfg handlers.AdminConfig, user domain.UserID, client domain.Client) error {
			_, err := handlers.NewDisableUserHandler(deps, cfg).Handle(ctx, handlers.DisableUser{UserID: user, Client: client})
			return err
		},
		target:  adaID,
		wantLog: `msg="account disabled"`,
	},
	{
		name: "EnableUser",
		run: func(ctx context.Context, deps handlers.AdminDeps, cfg handlers.AdminConfig, user domain.UserID, client domain.Client) error {
			_, err := handlers.NewEnableUserHandler(deps, cfg).Handle(ctx, handlers.EnableUser{UserID: user, Client: client})
			return err
		},
		target:  doraID,
		wantLog: `msg="account enabled"`,
	},
	{
		name: "UnlockUser",
		run: func(ctx context.Context, deps handlers.AdminDeps, cfg handlers.AdminConfig, user domain.UserID, client domain.Client) error {
			_, err := handlers.NewUnlockUserHandler(deps, cfg).Handle(ctx, handlers.UnlockUser{UserID: user, Client: client})
			return err
		},
		target:  adaID,
		wantLog: `msg="account unlocked"`,
	},
	{
		name: "DeleteUser",
		run: func(ctx context.Context, deps handlers.AdminDeps, cfg handlers.AdminConfig, user domain.UserID, client domain.Client) error {
			_, err := handlers.NewDeleteUserHandler(deps, cfg).Handle(ctx, handlers.DeleteUser{UserID: user, Client: client})
			return err
		},
		target:  adaID,
		wantLog: `msg="account deleted"`,
	},
}

// TestAdminRefusesNonAdmins: only the configured clients administer
// accounts. Anyone else is refused before any lookup, with one error
// whatever the user id, and nothing changes.
func TestAdminRefusesNonAdmins(t *testing.T) {
	tests := []struct {
		name    string
		cfg     handlers.AdminConfig
		client  domain.Client
		user    domain.UserID
		storeUp bool
	}{
		{"NonAdmin", adminConfig, webClient, adaID, true},
		{"NonAdminUnknownUser", adminConfig, webClient, adminUnknownID, true},
		{"NonAdminStoreDown", adminConfig, webClient, adaID, false},
		{"NoAdminsConfigured", handlers.AdminConfig{}, adminClient, adaID, true},
		{"EmptyClientID", handlers.AdminConfig{Clients: []string{"", "ops-console"}}, domain.Client{}, adaID, true},
	}
	for _, op := range adminOps {
		for _, tt := range tests {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				f := newAdminFixture(t)
				before := f.snapshots(t)
				deps := f.deps()
				if !tt.storeUp {
					deps.Users = failingUsers{} // a lookup would answer unavailable
				}
				err := op.run(context.Background(), deps, tt.cfg, tt.user, tt.client)
				if got := domain.ErrorCode(err); got != domain.CodeUnauthorized {
					t.Fatalf("error = %v, want %q", err, domain.CodeUnauthorized)
				}
				if got, want := domain.ErrorMessage(err), "client is not allowed to administer accounts"; got != want {
					t.Errorf("message = %q, want %q", got, want)
				}
				if after := f.snapshots(t); after != before {
					t.Errorf("users changed from %+v to %+v", before, after)
				}
				if got := f.revoked(t, f.adaSessions...); got[0] || got[1] {
					t.Errorf("sessions revoked: %v, want none", got)
				}
				if f.work.calls != 0 {
					t.Errorf("units of work = %d, want 0", f.work.calls)
				}
				if got := f.revocations.listed(); len(got) != 0 {
					t.Errorf("revocation list got %v, want nothing", got)
				}
				if got := f.throttle.unlocks(); len(got) != 0 {
					t.Errorf("throttle unlocked %v, want nothing", got)
				}
			})
		}
	}
}

// TestAdminLogsActions: every action is logged at info with the user's id
// and the acting client's id, and never with an e-mail address.
func TestAdminLogsActions(t *testing.T) {
	for _, op := range adminOps {
		t.Run(op.name, func(t *testing.T) {
			f := newAdminFixture(t)
			client := domain.Client{ID: "support-service"}
			if err := op.run(context.Background(), f.deps(), adminConfig, op.target, client); err != nil {
				t.Fatal(err)
			}
			logs := f.logs.String()
			for _, want := range []string{"level=INFO", op.wantLog, "user_id=" + string(op.target), "client_id=support-service"} {
				if !strings.Contains(logs, want) {
					t.Errorf("logs %q lack %q", logs, want)
				}
			}
			if strings.Contains(logs, "@") {
				t.Errorf("logs %q hold an e-mail address", logs)
			}
		})
	}
}
