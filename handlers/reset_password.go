package handlers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/authworker/authworker/domain"
)

// ResetPassword asks to set a new password with a code sent to the
// account's address.
type ResetPassword struct {
	Email       string
	Code        string
	NewPassword string
	Client      domain.Client
}

// ResetPasswordConfig configures a ResetPasswordHandler.
type ResetPasswordConfig struct {
	// Floor is the least time a refused code takes, counted from the start
	// of Handle, whether the account exists and whether a wrong code was
	// counted. Keep it above the slowest unit of work that counts one.
	// Default DefaultCodeFloor.
	Floor time.Duration
}

func (c *ResetPasswordConfig) setDefaults() {
	if c.Floor == 0 {
		c.Floor = DefaultCodeFloor
	}
}

// ResetPasswordDeps are the collaborators of a ResetPasswordHandler.
type ResetPasswordDeps struct {
	Work     UnitOfWork
	Users    domain.UserRepository
	Codes    domain.CodeRepository
	Sessions domain.SessionRepository
	// Revocations gets the sessions the reset ended, after it commits.
	Revocations domain.RevocationList
	// Throttle is unlocked for the account after the reset commits.
	Throttle domain.LoginThrottle
	Notifier domain.Notifier
	Events   domain.Events
	Policy   domain.PasswordPolicy
	Hasher   domain.PasswordHasher
	NewID    IDGenerator
	Now      Clock
	// Sleep waits for d or until ctx ends; default a timer. Tests record
	// instead of waiting.
	Sleep  func(ctx context.Context, d time.Duration)
	Logger *slog.Logger
}

// ResetPasswordHandler sets new passwords with reset codes.
type ResetPasswordHandler struct {
	deps  ResetPasswordDeps
	codes codeChecker
}

// NewResetPasswordHandler returns a ResetPasswordHandler.
func NewResetPasswordHandler(deps ResetPasswordDeps, cfg ResetPasswordConfig) *ResetPasswordHandler {
	cfg.setDefaults()
	if deps.Sleep == nil {
		deps.Sleep = sleep
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &ResetPasswordHandler{deps: deps, codes: codeChecker{
		work: deps.Work, users: deps.Users, codes: deps.Codes, purpose: domain.CodePasswordReset,
		now: deps.Now, sleep: deps.Sleep, floor: cfg.Floor,
	}}
}

// Handle sets the new password of the account with the address, if the
// code is the account's valid reset code. In one unit of work it uses the
// code up, sets the password, marks the address verified (the code proved
// it), ends every session of the account and records a
// NotifyPasswordChanged notification. Then, best effort, it puts the ended
// sessions on the revocation list and unlocks the account's login
// throttle.
//
// An unknown address, an inactive account, no code, a wrong, expired or
// void code, and a code another request used first all get the same
// CodeUnauthorized error, no sooner than Floor after Handle began; a wrong
// code is counted, and MaxCodeAttempts of them void the code. A malformed
// address gets CodeInvalid on field "email", an empty code CodeInvalid on
// "code", and a new password the policy refuses CodeInvalid on
// "newPassword": those come at once, before the code is looked at. A store
// that is down gives CodeUnavailable.
func (h *ResetPasswordHandler) Handle(ctx context.Context, cmd ResetPassword) (Done, error) {
	start := h.deps.Now()
	email, err := domain.ParseEmail(cmd.Email)
	if err != nil {
		return Done{}, err
	}
	if err := checkNewPassword(h.deps.Policy, cmd.NewPassword, email); err != nil {
		return Done{}, err
	}
	if cmd.Code == "" {
		return Done{}, domain.Invalid("code", "code is required")
	}
	user, err := h.codes.check(ctx, email, cmd.Code, start)
	if err != nil {
		return Done{}, h.codes.refuse(ctx, start, err)
	}
	// Hashed only for a code that matched: a stranger's guesses cost no
	// hash.
	hash, err := h.deps.Hasher.Hash(ctx, cmd.NewPassword)
	if err != nil {
		return Done{}, fmt.Errorf("hash password: %w", err)
	}
	now := h.deps.Now()
	changed := domain.Notification{
		ID: h.deps.NewID(), Kind: domain.NotifyPasswordChanged, UserID: user.ID(), Email: user.Email(),
		ClientID: cmd.Client.ID, OccurredAt: now,
	}
	var revoked []domain.SessionID
	_, err = Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		var err error
		revoked, err = h.reset(ctx, user.ID(), cmd.Code, hash, changed, now)
		return Done{}, err
	})
	if err != nil {
		return Done{}, h.codes.refuse(ctx, start, err)
	}
	h.afterReset(ctx, user, revoked)
	return Done{}, nil
}

// reset makes the writes of a password reset, inside its unit of work, and
// returns the sessions it ended.
func (h *ResetPasswordHandler) reset(ctx context.Context, id domain.UserID, code, hash string, changed domain.Notification, now time.Time) ([]domain.SessionID, error) {
	if err := h.codes.consume(ctx, id, code, now); err != nil {
		return nil, err
	}
	var verified bool
	err := h.deps.Users.UpdateUser(ctx, id, func(u *domain.User) error {
		if err := u.ChangePassword(hash, now); err != nil {
			return err
		}
		verified = u.VerifyEmail(now) // the code proved the address
		return nil
	})
	if err != nil {
		return nil, err
	}
	revoked, err := h.deps.Sessions.RevokeUserSessions(ctx, id, "", domain.RevokedByPasswordReset, now)
	if err != nil {
		return nil, err
	}
	h.deps.Events.Record(ctx, domain.Event{UserID: id, OccurredAt: now, Payload: domain.PasswordReset{}})
	if verified {
		h.deps.Events.Record(ctx, domain.Event{UserID: id, OccurredAt: now, Payload: domain.EmailVerified{}})
	}
	h.deps.Events.Record(ctx, domain.RevokedSessions(id, domain.RevokedByPasswordReset, now, revoked...)...)
	return revoked, h.deps.Notifier.Notify(ctx, changed)
}

// afterReset tells the fast stores of a committed reset. Both are best
// effort: the reset stands either way, the periodic sync puts the sessions
// on the revocation list, and the throttle's counts expire.
func (h *ResetPasswordHandler) afterReset(ctx context.Context, user *domain.User, revoked []domain.SessionID) {
	if len(revoked) > 0 {
		if err := h.deps.Revocations.Revoke(ctx, revoked...); err != nil {
			h.deps.Logger.Warn("put sessions ended by a password reset on the revocation list",
				"user_id", user.ID(), "sessions", len(revoked), "err", err)
		}
	}
	if err := h.deps.Throttle.Unlock(ctx, user.Email()); err != nil {
		h.deps.Logger.Warn("unlock the login throttle after a password reset", "user_id", user.ID(), "err", err)
	}
}

// checkNewPassword applies the password policy to a new password, naming
// the request's field, newPassword, in a refusal.
func checkNewPassword(policy domain.PasswordPolicy, password string, email domain.Email) error {
	err := policy.Check(password, domain.PasswordContext{Email: email})
	if e, ok := errors.AsType[*domain.Error](err); ok && e.Code == domain.CodeInvalid {
		renamed := *e
		renamed.Field = "newPassword"
		return &renamed
	}
	return err
}
