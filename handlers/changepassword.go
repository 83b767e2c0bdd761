package handlers

import (
	"context"
	"log/slog"

	"github.com/authworker/authworker/domain"
)

// ChangePassword asks to replace the password of the user an access token
// names; the current password must be given too.
type ChangePassword struct {
	AccessToken     string
	CurrentPassword string
	NewPassword     string
	Client          domain.Client
}

// ChangePasswordDeps are the collaborators of a ChangePasswordHandler.
type ChangePasswordDeps struct {
	Work        UnitOfWork
	Users       domain.UserRepository
	Sessions    domain.SessionRepository
	Tokens      domain.TokenIssuer
	Revocations domain.RevocationList
	Hasher      domain.PasswordHasher
	Policy      domain.PasswordPolicy
	Throttle    domain.LoginThrottle
	Notifier    domain.Notifier
	Events      domain.Events
	NewID       IDGenerator
	Now         Clock
	Logger      *slog.Logger
}

// ChangePasswordHandler changes passwords.
type ChangePasswordHandler struct {
	deps ChangePasswordDeps
}

// NewChangePasswordHandler returns a ChangePasswordHandler.
func NewChangePasswordHandler(deps ChangePasswordDeps) *ChangePasswordHandler {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &ChangePasswordHandler{deps: deps}
}

// Handle sets the new password if the access token is good (verified, its
// session not revoked) and the current password right, then revokes every
// other session of the user; the session the token belongs to continues.
// The owner is notified. A wrong current password is counted by the login
// throttle, as a login would be, so a stolen access token cannot be used to
// guess the password; it gets CodeUnauthorized. A new password the policy
// refuses gets CodeInvalid on "newPassword". Both passwords are hashed
// outside the unit of work. When the hasher refuses to check the current
// password in time, Handle returns that refusal (CodeRateLimited or
// CodeDeadlineExceeded) and the attempt is not counted.
func (h *ChangePasswordHandler) Handle(ctx context.Context, cmd ChangePassword) (Done, error) {
	claims, err := authenticate(ctx, h.deps.Tokens, h.deps.Revocations, cmd.AccessToken)
	if err != nil {
		return Done{}, err
	}
	if cmd.CurrentPassword == "" {
		return Done{}, domain.Invalid("currentPassword", "currentPassword is required")
	}
	user, err := h.deps.Users.UserByID(ctx, claims.UserID)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return Done{}, errInvalidAccessToken()
	}
	if err != nil {
		return Done{}, err
	}
	if err := h.deps.Policy.Check(cmd.NewPassword, domain.PasswordContext{Email: user.Email()}); err != nil {
		if e, ok := err.(*domain.Error); ok && e.Field == "password" {
			return Done{}, &domain.Error{Code: e.Code, Field: "newPassword", Message: e.Message, Err: e.Err}
		}
		return Done{}, err
	}

	attempt := domain.LoginAttempt{Account: user.Email(), Source: cmd.Client.Source()}
	verdict, err := h.deps.Throttle.Begin(ctx, attempt)
	if err != nil {
		return Done{}, err
	}
	if verdict.SourceRetryAfter > 0 {
		return Done{}, &domain.Error{Code: domain.CodeRateLimited, Message: "too many failed attempts from this source", RetryAfter: verdict.SourceRetryAfter}
	}
	if verdict.AccountLocked || !user.CanLogIn() {
		if err := h.deps.Hasher.VerifyDummy(ctx, cmd.CurrentPassword); err != nil {
			return Done{}, h.unverified(ctx, attempt, verdict, err)
		}
		return Done{}, errWrongPassword()
	}
	match, _, err := h.deps.Hasher.Verify(ctx, cmd.CurrentPassword, user.PasswordHash())
	if refusedHashing(err) {
		return Done{}, h.unverified(ctx, attempt, verdict, err)
	}
	if err != nil {
		h.deps.Logger.Error("unreadable password hash", "user_id", user.ID(), "err", err)
	}
	if !match {
		return Done{}, errWrongPassword()
	}
	if err := settle(ctx, func(ctx context.Context) error { return h.deps.Throttle.Succeeded(ctx, attempt) }); err != nil {
		// The current password is verified: failing now would only make
		// the caller's retry hash it again (as Login does).
		h.deps.Logger.Warn("clear a verified password change's attempt", "user_id", user.ID(), "err", err)
	}
	hash, err := h.deps.Hasher.Hash(ctx, cmd.NewPassword)
	if err != nil {
		return Done{}, err
	}

	now := h.deps.Now()
	var revoked []domain.SessionID
	done, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		// The account as it is now, locked until the change commits: a
		// password set, or the account disabled, since the current password
		// was verified leaves that password no longer the account's.
		err := h.deps.Users.UpdateUser(ctx, user.ID(), func(u *domain.User) error {
			if !u.PasswordChangedAt().Equal(user.PasswordChangedAt()) || !u.CanLogIn() {
				return errWrongPassword()
			}
			return u.ChangePassword(hash, now)
		})
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return Done{}, errWrongPassword() // erased meanwhile
		}
		if err != nil {
			return Done{}, err
		}
		if err := h.deps.Sessions.Reauthenticate(ctx, claims.SessionID, now); err != nil {
			return Done{}, err
		}
		revoked, err = h.deps.Sessions.RevokeUserSessions(ctx, user.ID(), claims.SessionID, domain.RevokedByPasswordChange, now)
		if err != nil {
			return Done{}, err
		}
		h.deps.Events.Record(ctx, domain.Event{UserID: user.ID(), OccurredAt: now, Payload: domain.PasswordChanged{}})
		h.deps.Events.Record(ctx, domain.RevokedSessions(user.ID(), domain.RevokedByPasswordChange, now, revoked...)...)
		return Done{}, h.deps.Notifier.Notify(ctx, domain.Notification{
			ID: h.deps.NewID(), Kind: domain.NotifyPasswordChanged, UserID: user.ID(), Email: user.Email(),
			ClientID: cmd.Client.ID, OccurredAt: now,
		})
	})
	if err == nil {
		listRevoked(ctx, h.deps.Revocations, h.deps.Logger, revoked...)
	}
	return done, err
}

// unverified answers an attempt whose current password the hasher refused
// to check (err): it is undecided, not failed, so its count is undone, even
// when the request's deadline has passed.
func (h *ChangePasswordHandler) unverified(ctx context.Context, a domain.LoginAttempt, v domain.ThrottleVerdict, err error) error {
	if v.AccountLocked {
		return err // refused attempts are not counted
	}
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer stop()
	if cerr := h.deps.Throttle.Cancel(ctx, a); cerr != nil {
		h.deps.Logger.Warn("cancel password change attempt", "err", cerr)
	}
	return err
}

// errWrongPassword refuses a password change whose current password is not
// the account's.
func errWrongPassword() error {
	return domain.Errorf(domain.CodeUnauthorized, "invalid current password")
}
