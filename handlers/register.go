package handlers

import (
	"context"
	"fmt"

	"github.com/authworker/authworker/domain"
)

// Register asks to create an account.
type Register struct {
	Email    string
	Password string
	Client   domain.Client
}

// RegisterResult is the new account.
type RegisterResult struct {
	UserID domain.UserID
}

// RegisterDeps are the collaborators of a RegisterHandler.
type RegisterDeps struct {
	Work   UnitOfWork
	Users  domain.UserRepository
	Policy domain.PasswordPolicy
	Hasher domain.PasswordHasher
	NewID  IDGenerator
	Now    Clock
}

// RegisterHandler creates accounts.
type RegisterHandler struct {
	deps RegisterDeps
}

// NewRegisterHandler returns a RegisterHandler.
func NewRegisterHandler(deps RegisterDeps) *RegisterHandler {
	return &RegisterHandler{deps: deps}
}

// Handle creates the account. It returns CodeInvalid for a malformed e-mail
// address or a password the policy refuses, and CodeConflict when the
// address is taken. The password is hashed before the address is checked
// for uniqueness, so both outcomes take the same time, and outside the unit
// of work, so no transaction waits for it.
func (h *RegisterHandler) Handle(ctx context.Context, cmd Register) (RegisterResult, error) {
	email, err := domain.ParseEmail(cmd.Email)
	if err != nil {
		return RegisterResult{}, err
	}
	if err := h.deps.Policy.Check(cmd.Password, domain.PasswordContext{Email: email}); err != nil {
		return RegisterResult{}, err
	}
	hash, err := h.deps.Hasher.Hash(cmd.Password)
	if err != nil {
		return RegisterResult{}, fmt.Errorf("hash password: %w", err)
	}
	user, err := domain.NewUser(domain.UserID(h.deps.NewID()), email, hash, h.deps.Now())
	if err != nil {
		return RegisterResult{}, err
	}
	return Commit(ctx, h.deps.Work, func(ctx context.Context) (RegisterResult, error) {
		if err := h.deps.Users.CreateUser(ctx, user); err != nil {
			return RegisterResult{}, err
		}
		return RegisterResult{UserID: user.ID()}, nil
	})
}
