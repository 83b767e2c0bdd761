package handlers_test

import (
	"context"
	"errors"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
)

const goodPassword = "plum kayak violet thunder"

func newRegisterHandler(users domain.UserRepository, cfg handlers.RegisterConfig) *handlers.RegisterHandler {
	return handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work:    &fakeWork{},
		Users:   users,
		Policy:  fakePolicy{},
		Hasher:  &fakeHasher{},
		Limiter: &fakeLimiter{limit: 100},
		Events:  &recordingEvents{},
		NewID:   sequentialIDs(),
		Now:     fixedClock,
	}, cfg)
}

func TestRegister(t *testing.T) {
	tests := []struct {
		name      string
		users     func() domain.UserRepository
		cmd       handlers.Register
		wantCode  domain.Code
		wantField string
	}{
		{"OK", existingUsers, handlers.Register{Email: "Ada@Example.com", Password: goodPassword}, "", ""},
		{"InvalidEmail", existingUsers, handlers.Register{Email: "ada", Password: goodPassword}, domain.CodeInvalid, "email"},
		{"WeakPassword", existingUsers, handlers.Register{Email: "ada@example.com", Password: "short"}, domain.CodeInvalid, "password"},
		{"PasswordHoldsTheEmail", existingUsers, handlers.Register{Email: "Ada@Example.com", Password: "my address ada@example.com"}, domain.CodeInvalid, "password"},
		{"EmailTakenRevealed", existingUsers, handlers.Register{Email: "bob@example.com", Password: goodPassword}, domain.CodeConflict, ""},
		{"EmailTakenOtherCaseRevealed", existingUsers, handlers.Register{Email: "BOB@example.com", Password: goodPassword}, domain.CodeConflict, ""},
		{"StoreDown", func() domain.UserRepository { return failingUsers{} }, handlers.Register{Email: "ada@example.com", Password: goodPassword}, domain.CodeUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users := tt.users()
			got, err := newRegisterHandler(users, handlers.RegisterConfig{RevealConflict: true}).Handle(context.Background(), tt.cmd)
			if code := domain.ErrorCode(err); code != tt.wantCode {
				t.Fatalf("error = %v, want code %q", err, tt.wantCode)
			}
			if tt.wantField != "" {
				if e, ok := errors.AsType[*domain.Error](err); !ok || e.Field != tt.wantField {
					t.Errorf("error field = %+v, want %q", err, tt.wantField)
				}
			}
			if tt.wantCode != "" {
				return
			}
			u, err := users.UserByEmail(context.Background(), "ada@example.com")
			if err != nil {
				t.Fatalf("registered user not stored: %v", err)
			}
			if u.ID() != got.UserID {
				t.Errorf("stored id %q, returned %q", u.ID(), got.UserID)
			}
			if u.PasswordHash() != "hash:"+goodPassword {
				t.Errorf("stored hash %q, want the hasher's output", u.PasswordHash())
			}
		})
	}
}

// existingUsers returns a store holding bob@example.com.
func existingUsers() domain.UserRepository {
	users := inmem.NewUserRepository()
	bob, err := domain.NewUser("00000000-0000-7000-8000-b0b000000000", "bob@example.com", "hash:"+goodPassword, testNow)
	if err != nil {
		panic(err)
	}
	if err := users.CreateUser(context.Background(), bob); err != nil {
		panic(err)
	}
	return users
}

// TestRegisterHashesOutsideTheUnitOfWork: the account is written in the unit
// of work, and the password hashed before it.
func TestRegisterHashesOutsideTheUnitOfWork(t *testing.T) {
	work := &fakeWork{}
	hasher := &fakeHasher{work: work}
	users := inmem.NewUserRepository()
	h := handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work: work, Users: users, Policy: fakePolicy{}, Hasher: hasher, Limiter: &fakeLimiter{limit: 100},
		Events: &recordingEvents{work: work}, NewID: sequentialIDs(), Now: fixedClock,
	}, handlers.RegisterConfig{})
	if _, err := h.Handle(context.Background(), handlers.Register{Email: "ada@example.com", Password: goodPassword}); err != nil {
		t.Fatal(err)
	}
	if work.calls != 1 {
		t.Errorf("units of work = %d, want 1", work.calls)
	}
	if got := hasher.inWork(); got != 0 {
		t.Errorf("%d hash computations inside the unit of work, want none", got)
	}
}

// TestRegisterDoesNotRevealAccounts: by default, registering a taken
// address gets the reply a new account gets, after the same work, and
// writes nothing.
func TestRegisterDoesNotRevealAccounts(t *testing.T) {
	users := existingUsers()
	hasher := &fakeHasher{}
	h := handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work: &fakeWork{}, Users: users, Policy: fakePolicy{}, Hasher: hasher, Limiter: &fakeLimiter{limit: 100},
		Notifier: &recordingNotifier{}, Events: &recordingEvents{}, NewID: sequentialIDs(), Now: fixedClock,
	}, handlers.RegisterConfig{})
	taken, err := h.Handle(context.Background(), handlers.Register{Email: "bob@example.com", Password: goodPassword})
	if err != nil {
		t.Fatalf("registering a taken address: %v, want the reply of a new account", err)
	}
	fresh, err := h.Handle(context.Background(), handlers.Register{Email: "ada@example.com", Password: goodPassword})
	if err != nil {
		t.Fatal(err)
	}
	if !domain.ValidID(string(taken.UserID)) || taken.UserID == fresh.UserID {
		t.Errorf("ids %q and %q: want two well-formed, different ids", taken.UserID, fresh.UserID)
	}
	bob, err := users.UserByEmail(context.Background(), "bob@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if bob.ID() == taken.UserID || bob.ID() != "00000000-0000-7000-8000-b0b000000000" {
		t.Errorf("the reply named or replaced the existing account (%q)", bob.ID())
	}
	if hasher.hashes != 2 {
		t.Errorf("%d hashes for two registrations, want one each: the same work either way", hasher.hashes)
	}
}

func TestRegisterRateLimitedPerSource(t *testing.T) {
	limiter := &fakeLimiter{limit: 2}
	hasher := &fakeHasher{}
	h := handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work: &fakeWork{}, Users: inmem.NewUserRepository(), Policy: fakePolicy{}, Hasher: hasher, Limiter: limiter,
		Events: &recordingEvents{}, NewID: sequentialIDs(), Now: fixedClock,
	}, handlers.RegisterConfig{})
	client := domain.Client{ID: "web", IP: "192.0.2.1"}
	for i, email := range []string{"a@example.com", "b@example.com", "c@example.com"} {
		_, err := h.Handle(context.Background(), handlers.Register{Email: email, Password: goodPassword, Client: client})
		if i < 2 && err != nil {
			t.Fatalf("registration %d: %v", i+1, err)
		}
		if i == 2 {
			e, ok := errors.AsType[*domain.Error](err)
			if !ok || e.Code != domain.CodeRateLimited || e.RetryAfter <= 0 {
				t.Fatalf("third registration: %v, want rate_limited with a retry-after", err)
			}
		}
	}
	if hasher.hashes != 2 {
		t.Errorf("%d hashes, want none for the refused registration", hasher.hashes)
	}
	if limiter.sources["ip:192.0.2.1"] != 3 {
		t.Errorf("limiter saw %v, want three requests from ip:192.0.2.1", limiter.sources)
	}
}
