package handlers

import (
	"context"
	"fmt"
	"log/slog"

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
	Work    UnitOfWork
	Users   domain.UserRepository
	Policy  domain.PasswordPolicy
	Hasher  domain.PasswordHasher
	Limiter domain.RateLimiter // registrations per source
	// AccountLimiter limits the notices to the owner of a taken address,
	// keyed "notice:" and the address, whatever sources claim it: so that
	// registering someone's address again and again does not flood their
	// mailbox. Nil: no limit.
	AccountLimiter domain.RateLimiter
	// Notifier tells the owner of a taken address that someone tried to
	// register it, when the caller is not told (RevealConflict off).
	Notifier domain.Notifier
	Events   domain.Events
	NewID    IDGenerator
	Now      Clock
	Logger   *slog.Logger
}

// RegisterConfig sets what a registration for a taken address answers.
type RegisterConfig struct {
	// RevealConflict answers a registration for an address that has an
	// account with CodeConflict. Off by default: the caller then gets the
	// same reply as for a new account (with an id that names no account),
	// so registration cannot tell whether an address has an account. Turn
	// it on only when every caller is trusted with that knowledge.
	RevealConflict bool
}

// RegisterHandler creates accounts.
type RegisterHandler struct {
	deps RegisterDeps
	cfg  RegisterConfig
}

// NewRegisterHandler returns a RegisterHandler.
func NewRegisterHandler(deps RegisterDeps, cfg RegisterConfig) *RegisterHandler {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &RegisterHandler{deps: deps, cfg: cfg}
}

// Handle creates the account. It returns CodeInvalid for a malformed e-mail
// address or a password the policy refuses, CodeRateLimited when the source
// registered too often, and CodeUnavailable when a store is down. For an
// address that is taken it returns what a new account gets, and tells the
// address's owner of the attempt in the same unit of work; with
// RevealConflict it returns CodeConflict instead. The password is hashed
// before the address is checked, so both outcomes take the same time, and
// outside the unit of work, so no transaction waits for it. When the hasher
// refuses to hash in time, Handle returns that refusal (CodeRateLimited
// with a retry-after, or CodeDeadlineExceeded) and creates nothing; the
// registration still counts against the source's limit.
func (h *RegisterHandler) Handle(ctx context.Context, cmd Register) (RegisterResult, error) {
	email, err := domain.ParseEmail(cmd.Email)
	if err != nil {
		return RegisterResult{}, err
	}
	wait, err := h.deps.Limiter.Allow(ctx, cmd.Client.Source())
	if err != nil {
		return RegisterResult{}, err
	}
	if wait > 0 {
		return RegisterResult{}, &domain.Error{Code: domain.CodeRateLimited, Message: "too many registrations from this source", RetryAfter: wait}
	}
	if err := h.deps.Policy.Check(cmd.Password, domain.PasswordContext{Email: email}); err != nil {
		return RegisterResult{}, err
	}
	hash, err := h.deps.Hasher.Hash(ctx, cmd.Password)
	if err != nil {
		return RegisterResult{}, fmt.Errorf("hash password: %w", err)
	}
	now := h.deps.Now()
	user, err := domain.NewUser(domain.UserID(h.deps.NewID()), email, hash, now)
	if err != nil {
		return RegisterResult{}, err
	}
	// Drawn for every registration, since only the unit of work learns
	// whether the address is taken, and it must compute nothing new when
	// it is retried.
	attempt := domain.Notification{
		ID: h.deps.NewID(), Kind: domain.NotifyRegistrationAttempt, ClientID: cmd.Client.ID, OccurredAt: now,
	}
	var tell *bool // whether the owner may be told, decided once: a retried unit of work spends no more of the budget
	return Commit(ctx, h.deps.Work, func(ctx context.Context) (RegisterResult, error) {
		err := h.deps.Users.CreateUser(ctx, user)
		if domain.ErrorCode(err) == domain.CodeConflict && !h.cfg.RevealConflict {
			// The id names no account: the caller learns nothing, and the
			// owner learns of the attempt.
			h.deps.Logger.Info("registration for an address that has an account")
			if tell == nil {
				ok := h.mayTell(ctx, email)
				tell = &ok
			}
			if !*tell {
				return RegisterResult{UserID: user.ID()}, nil
			}
			return RegisterResult{UserID: user.ID()}, h.tellOwner(ctx, email, attempt)
		}
		if err != nil {
			return RegisterResult{}, err
		}
		h.deps.Events.Record(ctx, domain.Event{UserID: user.ID(), OccurredAt: now, Payload: domain.UserRegistered{Email: email}})
		return RegisterResult{UserID: user.ID()}, nil
	})
}

// mayTell reports whether the owner of email may be told of one more
// registration attempt. When the limiter cannot tell (its store is down),
// the owner is not told: the caller's reply is the same either way, and
// the registration does not fail for a notice.
func (h *RegisterHandler) mayTell(ctx context.Context, email domain.Email) bool {
	if h.deps.AccountLimiter == nil {
		return true
	}
	wait, err := h.deps.AccountLimiter.Allow(ctx, "notice:"+email.String())
	if err != nil {
		h.deps.Logger.Warn("registration attempt not told: the notice limit is unavailable", "err", err)
		return false
	}
	if wait > 0 {
		h.deps.Logger.Info("registration attempt not told: too many for the address")
		return false
	}
	return true
}

// tellOwner notifies the owner of email of a registration attempt. An
// address without an owner (the conflict was on the id, or the owner was
// erased since) notifies nobody.
func (h *RegisterHandler) tellOwner(ctx context.Context, email domain.Email, n domain.Notification) error {
	owner, err := h.deps.Users.UserByEmail(ctx, email)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return nil
	}
	if err != nil {
		return err
	}
	n.UserID, n.Email = owner.ID(), owner.Email()
	return h.deps.Notifier.Notify(ctx, n)
}
