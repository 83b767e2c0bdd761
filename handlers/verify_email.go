package handlers

import (
	"context"
	"time"

	"github.com/authworker/authworker/domain"
)

// VerifyEmail asks to record that the owner of an address proved it, with a
// code sent there.
type VerifyEmail struct {
	Email  string
	Code   string
	Client domain.Client
}

// VerifyEmailConfig configures a VerifyEmailHandler.
type VerifyEmailConfig struct {
	// Floor is the least time a refused code takes, counted from the start
	// of Handle, whether the account exists and whether a wrong code was
	// counted. Keep it above the slowest unit of work that counts one.
	// Default DefaultCodeFloor.
	Floor time.Duration
}

func (c *VerifyEmailConfig) setDefaults() {
	if c.Floor == 0 {
		c.Floor = DefaultCodeFloor
	}
}

// VerifyEmailDeps are the collaborators of a VerifyEmailHandler.
type VerifyEmailDeps struct {
	Work   UnitOfWork
	Users  domain.UserRepository
	Codes  domain.CodeRepository
	Events domain.Events
	Now    Clock
	// Sleep waits for d or until ctx ends; default a timer. Tests record
	// instead of waiting.
	Sleep func(ctx context.Context, d time.Duration)
}

// VerifyEmailHandler verifies addresses with codes.
type VerifyEmailHandler struct {
	deps  VerifyEmailDeps
	codes codeChecker
}

// NewVerifyEmailHandler returns a VerifyEmailHandler.
func NewVerifyEmailHandler(deps VerifyEmailDeps, cfg VerifyEmailConfig) *VerifyEmailHandler {
	cfg.setDefaults()
	if deps.Sleep == nil {
		deps.Sleep = sleep
	}
	return &VerifyEmailHandler{deps: deps, codes: codeChecker{
		work: deps.Work, users: deps.Users, codes: deps.Codes, purpose: domain.CodeEmailVerification,
		now: deps.Now, sleep: deps.Sleep, floor: cfg.Floor,
	}}
}

// Handle records that the owner of the address proved it, if the code is
// the account's valid verification code, and uses the code up, in one unit
// of work. An address verified already stays so, and the reply is Done.
//
// An unknown address, an inactive account, no code, a wrong, expired or
// void code, and a code another request used first all get the same
// CodeUnauthorized error, no sooner than Floor after Handle began; a wrong
// code is counted, and MaxCodeAttempts of them void the code. A malformed
// address gets CodeInvalid on field "email" and an empty code CodeInvalid
// on "code", at once. A store that is down gives CodeUnavailable.
func (h *VerifyEmailHandler) Handle(ctx context.Context, cmd VerifyEmail) (Done, error) {
	start := h.deps.Now()
	email, err := domain.ParseEmail(cmd.Email)
	if err != nil {
		return Done{}, err
	}
	if cmd.Code == "" {
		return Done{}, domain.Invalid("code", "code is required")
	}
	user, err := h.codes.check(ctx, email, cmd.Code, start)
	if err != nil {
		return Done{}, h.codes.refuse(ctx, start, err)
	}
	now := h.deps.Now()
	_, err = Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		if err := h.codes.consume(ctx, user.ID(), cmd.Code, now); err != nil {
			return Done{}, err
		}
		var verified bool
		err := h.deps.Users.UpdateUser(ctx, user.ID(), func(u *domain.User) error {
			verified = u.VerifyEmail(now)
			return nil
		})
		if verified {
			h.deps.Events.Record(ctx, domain.Event{UserID: user.ID(), OccurredAt: now, Payload: domain.EmailVerified{}})
		}
		return Done{}, err
	})
	if err != nil {
		return Done{}, h.codes.refuse(ctx, start, err)
	}
	return Done{}, nil
}
