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

func newRegisterHandler(users domain.UserRepository) *handlers.RegisterHandler {
	return handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work:   &fakeWork{},
		Users:  users,
		Policy: fakePolicy{},
		Hasher: &fakeHasher{},
		NewID:  sequentialIDs(),
		Now:    fixedClock,
	})
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
		{"EmailTaken", existingUsers, handlers.Register{Email: "bob@example.com", Password: goodPassword}, domain.CodeConflict, ""},
		{"EmailTakenOtherCase", existingUsers, handlers.Register{Email: "BOB@example.com", Password: goodPassword}, domain.CodeConflict, ""},
		{"StoreDown", func() domain.UserRepository { return failingUsers{} }, handlers.Register{Email: "ada@example.com", Password: goodPassword}, domain.CodeUnavailable, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			users := tt.users()
			got, err := newRegisterHandler(users).Handle(context.Background(), tt.cmd)
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
		Work: work, Users: users, Policy: fakePolicy{}, Hasher: hasher, NewID: sequentialIDs(), Now: fixedClock,
	})
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
