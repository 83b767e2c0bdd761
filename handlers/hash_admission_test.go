package handlers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
)

// refusals are what a busy or late hasher answers instead of hashing.
var refusals = []struct {
	name string
	err  *domain.Error
}{
	{"Busy", &domain.Error{Code: domain.CodeRateLimited, Message: "too many password checks at once; retry later", RetryAfter: 300 * time.Millisecond}},
	{"TooLate", &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "no time left to hash the password before the deadline"}},
}

// checkRefusal fails unless err is refusal, passed on with its retry-after.
func checkRefusal(t *testing.T, err error, refusal *domain.Error) {
	t.Helper()
	e, ok := errors.AsType[*domain.Error](err)
	if !ok || e.Code != refusal.Code || e.RetryAfter != refusal.RetryAfter {
		t.Fatalf("error = %v, want %s with retry after %v", err, refusal.Code, refusal.RetryAfter)
	}
}

// TestLoginRefusedHashingIsNotAFailure: when the hasher refuses to check
// the password, the login gets that refusal at once, whatever the account:
// the throttle does not count it, no LoginFailed is recorded, no session
// is opened, and it does not wait for the reply floor (which hides how long
// a check takes: none was made).
func TestLoginRefusedHashingIsNotAFailure(t *testing.T) {
	tests := []struct {
		name     string
		failures int // the account's failures before the attempt
		cmd      handlers.Login
	}{
		{"UnknownUser", 0, login("nobody@example.com", goodPassword)},
		{"WrongPassword", 1, login("ada@example.com", "wrong password, long enough")},
		{"RightPassword", 1, login("ada@example.com", goodPassword)},
		{"Disabled", 0, login("dora@example.com", goodPassword)},
		{"Locked", 3, login("ada@example.com", goodPassword)},
		{"LockedUnknownUser", 3, login("nobody@example.com", goodPassword)},
	}
	for _, tt := range tests {
		for _, r := range refusals {
			t.Run(tt.name+"/"+r.name, func(t *testing.T) {
				f := newLoginFixture(t)
				f.hasher.refuse = r.err
				account := domain.Email(tt.cmd.Email)
				f.throttle.failures[account] = tt.failures

				_, err := f.handler.Handle(context.Background(), tt.cmd)

				checkRefusal(t, err, r.err)
				if f.hasher.refusedCount() != 1 {
					t.Errorf("hasher asked %d times, want once", f.hasher.refusedCount())
				}
				if got := f.throttle.failuresOf(account); got != tt.failures {
					t.Errorf("failures after a refused check = %d, want %d (not counted)", got, tt.failures)
				}
				if got := f.events.all(); len(got) != 0 {
					t.Errorf("events %v, want none for a login whose password was not checked", got)
				}
				if f.sleeps.total != 0 {
					t.Errorf("waited %v for the floor, want no wait", f.sleeps.total)
				}
				if f.work.calls != 0 {
					t.Errorf("%d units of work, want none", f.work.calls)
				}
			})
		}
	}
}

// TestLoginRefusalsDoNotTellAccounts: for one refusal, an unknown account
// and a known one get the same reply.
func TestLoginRefusalsDoNotTellAccounts(t *testing.T) {
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			var replies []string
			for _, email := range []string{"nobody@example.com", "ada@example.com"} {
				f := newLoginFixture(t)
				f.hasher.refuse = r.err
				_, err := f.handler.Handle(context.Background(), login(email, goodPassword))
				replies = append(replies, string(domain.ErrorCode(err))+": "+domain.ErrorMessage(err))
			}
			if replies[0] != replies[1] {
				t.Errorf("unknown account got %q, known %q: want the same", replies[0], replies[1])
			}
		})
	}
}

// TestLoginSkipsRehashWhenHasherBusy: replacing an outdated hash is
// optional; with no slot free the login succeeds and keeps the old hash,
// to be replaced at a later login.
func TestLoginSkipsRehashWhenHasherBusy(t *testing.T) {
	f := newLoginFixture(t)
	f.hasher.busy = true
	if _, err := f.handler.Handle(context.Background(), login("olga@example.com", goodPassword)); err != nil {
		t.Fatalf("login with a busy hasher: %v", err)
	}
	u, err := f.users.UserByEmail(context.Background(), "olga@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := u.PasswordHash(), "old:"+goodPassword; got != want {
		t.Errorf("hash after login = %q, want the old one %q kept", got, want)
	}
}

// TestRegisterRefusedHashing: a registration whose password the hasher
// refuses to hash gets the refusal, creates nothing and records nothing.
func TestRegisterRefusedHashing(t *testing.T) {
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			users := inmem.NewUserRepository()
			events := &recordingEvents{}
			h := handlers.NewRegisterHandler(handlers.RegisterDeps{
				Work: &fakeWork{}, Users: users, Policy: fakePolicy{}, Hasher: &fakeHasher{refuse: r.err},
				Limiter: &fakeLimiter{limit: 100}, Events: events, NewID: sequentialIDs(), Now: fixedClock,
			}, handlers.RegisterConfig{})
			_, err := h.Handle(context.Background(), handlers.Register{Email: "ada@example.com", Password: goodPassword})
			checkRefusal(t, err, r.err)
			if _, err := users.UserByEmail(context.Background(), "ada@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
				t.Errorf("user lookup after a refused registration: %v, want not found", err)
			}
			if got := events.all(); len(got) != 0 {
				t.Errorf("events %v, want none", got)
			}
		})
	}
}

// TestChangePasswordRefusedHashing: a password change whose current
// password the hasher refuses to check gets the refusal and is not counted
// as a wrong password.
func TestChangePasswordRefusedHashing(t *testing.T) {
	for _, r := range refusals {
		t.Run(r.name, func(t *testing.T) {
			f := newSessionFixture(t)
			s := f.open(t)
			f.events.reset()
			f.hasher.refuse = r.err
			_, err := f.change.Handle(context.Background(), handlers.ChangePassword{
				AccessToken: s.AccessToken.Token, CurrentPassword: "wrong password, long enough",
				NewPassword: "a brand new passphrase here", Client: domain.Client{ID: "web", IP: "192.0.2.1"},
			})
			checkRefusal(t, err, r.err)
			if got := f.throttle.failuresOf("ada@example.com"); got != 0 {
				t.Errorf("failures after a refused check = %d, want 0", got)
			}
			if got := f.events.all(); len(got) != 0 {
				t.Errorf("events %v, want none", got)
			}
		})
	}
}
