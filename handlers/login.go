package handlers

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/authworker/authworker/domain"
)

// Login asks to verify credentials and open a session.
type Login struct {
	Email    string
	Password string
	Client   domain.Client
}

// LoginResult is the opened session and its tokens.
type LoginResult struct {
	UserID                domain.UserID
	SessionID             domain.SessionID
	AccessToken           domain.AccessToken
	RefreshToken          string
	RefreshTokenExpiresAt time.Time
}

// SessionConfig sets how long sessions and refresh tokens live.
type SessionConfig struct {
	// SessionTTL is the absolute lifetime of a session: no refresh extends
	// it. Default 30 days.
	SessionTTL time.Duration
	// RefreshIdleTTL is how long a refresh token stays valid unused.
	// Default 7 days.
	RefreshIdleTTL time.Duration
}

// Defaults of SessionConfig.
const (
	DefaultSessionTTL     = 30 * 24 * time.Hour
	DefaultRefreshIdleTTL = 7 * 24 * time.Hour
)

func (c *SessionConfig) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = DefaultSessionTTL
	}
	if c.RefreshIdleTTL == 0 {
		c.RefreshIdleTTL = DefaultRefreshIdleTTL
	}
}

// DefaultFailureFloor is LoginConfig.FailureFloor's default: above the
// slowest verification of any hash the worker reads (a bcrypt hash of cost
// 10, or argon2id at 64 MiB, take 60 to 120 ms on a small machine).
const DefaultFailureFloor = 250 * time.Millisecond

// LoginConfig configures a LoginHandler.
type LoginConfig struct {
	SessionConfig
	// FailureFloor is the least time a refused login takes, counted from
	// the start of Handle. Every refusal that tells "no" about the
	// credentials (unknown user, wrong password, locked, disabled,
	// unreadable hash) is answered no sooner, so that how an account's
	// password is stored (a legacy bcrypt or PBKDF2 hash, argon2 with other
	// costs), and so that the account exists, cannot be told by timing. Keep
	// it above the slowest stored hash's verification.
	FailureFloor time.Duration
	// RequireVerifiedEmail refuses a login whose password is right while
	// the account's address is not verified yet, with CodeUnauthorized
	// "email address is not verified" on field "email", and opens no
	// session. Only the right password gets that reply, so it tells a
	// guesser nothing. Off by default.
	RequireVerifiedEmail bool
}

func (c *LoginConfig) setDefaults() {
	c.SessionConfig.setDefaults()
	if c.FailureFloor == 0 {
		c.FailureFloor = DefaultFailureFloor
	}
}

// LoginDeps are the collaborators of a LoginHandler.
type LoginDeps struct {
	Work     UnitOfWork
	Users    domain.UserRepository
	Sessions domain.SessionRepository
	Hasher   domain.PasswordHasher
	Throttle domain.LoginThrottle
	Tokens   domain.TokenIssuer
	Events   domain.Events
	NewID    IDGenerator
	Now      Clock
	Random   io.Reader // the source of refresh tokens: crypto/rand in production
	// Sleep waits for d or until ctx ends; default a timer. Tests record
	// instead of waiting.
	Sleep  func(ctx context.Context, d time.Duration)
	Logger *slog.Logger
}

// LoginHandler verifies credentials and opens sessions.
type LoginHandler struct {
	deps LoginDeps
	cfg  LoginConfig
}

// NewLoginHandler returns a LoginHandler.
func NewLoginHandler(deps LoginDeps, cfg LoginConfig) *LoginHandler {
	cfg.setDefaults()
	if deps.Sleep == nil {
		deps.Sleep = sleep
	}
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &LoginHandler{deps: deps, cfg: cfg}
}

// Handle verifies the credentials and opens a session.
//
// An unknown user, a wrong password, a locked and a disabled account all get
// the same CodeUnauthorized error after the same work: a missing user costs a
// dummy hash verification. A source that failed too often gets
// CodeRateLimited with a retry-after. When the throttle or the user store is
// down, Handle fails closed with CodeUnavailable before verifying anything.
// When the throttle cannot clear the attempt after the password verified
// (Redis went down meanwhile), the login still succeeds: a caller's retry
// would hash the password again, and the attempt's count expires anyway.
// When the hasher refuses to check the password in time (CodeRateLimited
// with a retry-after, or CodeDeadlineExceeded), Handle returns that refusal
// at once: nothing was verified, so the attempt is not counted by the
// throttle, no LoginFailed is recorded, and, the hasher admitting unknown
// and known accounts by one rule, the refusal tells nothing of the account.
// With RequireVerifiedEmail, the right password for an account whose address
// is not verified gets CodeUnauthorized on field "email" and no session.
//
// Everything but the writes happens before the unit of work: the hash, the
// throttle's bookkeeping, the new session's secrets and its signed access
// token. So no transaction waits for argon2, and a retried unit of work
// neither hashes nor counts the attempt again.
func (h *LoginHandler) Handle(ctx context.Context, cmd Login) (LoginResult, error) {
	start := h.deps.Now()
	email, err := domain.ParseEmail(cmd.Email)
	if err != nil {
		return LoginResult{}, err
	}
	if cmd.Password == "" {
		return LoginResult{}, domain.Invalid("password", "password is required")
	}
	attempt := domain.LoginAttempt{Account: email, Source: cmd.Client.Source()}
	verdict, err := h.deps.Throttle.Begin(ctx, attempt)
	if err != nil {
		return LoginResult{}, err
	}
	if verdict.SourceRetryAfter > 0 {
		return LoginResult{}, &domain.Error{
			Code:       domain.CodeRateLimited,
			Message:    "too many failed logins from this source",
			RetryAfter: verdict.SourceRetryAfter,
		}
	}

	// From here the attempt is counted as a failure (Begin reserved it):
	// only a verified password undoes that, and only a failure to decide
	// cancels it.
	user, err := h.deps.Users.UserByEmail(ctx, email)
	if err != nil && domain.ErrorCode(err) != domain.CodeNotFound {
		h.cancel(ctx, attempt, verdict)
		return LoginResult{}, err
	}
	if err != nil {
		if err := h.deps.Hasher.VerifyDummy(ctx, cmd.Password); err != nil {
			return LoginResult{}, h.unverified(ctx, attempt, verdict, err)
		}
		return LoginResult{}, h.refuse(ctx, start, "", domain.LoginFailedUnknownAccount, verdict)
	}
	if verdict.AccountLocked {
		if err := h.deps.Hasher.VerifyDummy(ctx, cmd.Password); err != nil {
			return LoginResult{}, h.unverified(ctx, attempt, verdict, err)
		}
		return LoginResult{}, h.refuse(ctx, start, user.ID(), domain.LoginFailedLocked, verdict)
	}

	match, rehash, err := h.deps.Hasher.Verify(ctx, cmd.Password, user.PasswordHash())
	if refusedHashing(err) {
		return LoginResult{}, h.unverified(ctx, attempt, verdict, err)
	}
	if err != nil {
		// An unreadable stored hash is a data problem to fix, not a reason
		// to answer differently.
		h.deps.Logger.Error("unreadable password hash", "user_id", user.ID(), "err", err)
	}
	switch {
	case !match:
		return LoginResult{}, h.refuse(ctx, start, user.ID(), domain.LoginFailedBadCredentials, verdict)
	case !user.CanLogIn():
		return LoginResult{}, h.refuse(ctx, start, user.ID(), domain.LoginFailedDisabled, verdict)
	}
	if err := settle(ctx, func(ctx context.Context) error { return h.deps.Throttle.Succeeded(ctx, attempt) }); err != nil {
		// The password is verified: failing the login now would only make
		// its caller's retry hash it again. The attempt stays counted as a
		// failure until the throttle's window forgets it.
		h.deps.Logger.Warn("clear a verified login's attempt", "user_id", user.ID(), "err", err)
	}
	if h.cfg.RequireVerifiedEmail && !user.EmailVerified() {
		h.failed(ctx, user.ID(), domain.LoginFailedEmailNotVerified)
		return LoginResult{}, &domain.Error{Code: domain.CodeUnauthorized, Field: "email", Message: "email address is not verified"}
	}
	var newHash string
	if rehash {
		newHash = h.newHash(ctx, user, cmd.Password)
	}
	s, err := h.newSession(ctx, user, cmd.Client)
	if err != nil {
		return LoginResult{}, err
	}
	result, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (LoginResult, error) {
		if reason, err := h.recheck(ctx, user, newHash); err != nil || reason != "" {
			if reason != "" {
				id := user.ID()
				if reason == domain.LoginFailedUnknownAccount {
					id = "" // erased meanwhile: no account is named any more
				}
				h.failed(ctx, id, reason)
				return LoginResult{}, errBadCredentials()
			}
			return LoginResult{}, err
		}
		if err := h.deps.Sessions.CreateSession(ctx, s.session, s.refresh); err != nil {
			return LoginResult{}, err
		}
		h.deps.Events.Record(ctx, domain.Event{
			UserID: user.ID(), OccurredAt: s.session.CreatedAt(), Payload: domain.LoginSucceeded{SessionID: s.session.ID()},
		})
		return s.result, nil
	})
	if domain.ErrorCode(err) == domain.CodeUnauthorized {
		h.floor(ctx, start)
	}
	return result, err
}

// recheck reads the account again, locked until the login commits, and
// returns why the login must now fail, if it must: the password was set
// since it was verified (a reset or a change, which revoked the sessions
// there were and would never revoke this one), or the account was
// disabled or erased meanwhile. It stores newHash, a stronger hash of the
// verified password, unless the hash changed meanwhile.
func (h *LoginHandler) recheck(ctx context.Context, verified *domain.User, newHash string) (domain.LoginFailureReason, error) {
	var reason domain.LoginFailureReason
	err := h.deps.Users.UpdateUser(ctx, verified.ID(), func(u *domain.User) error {
		switch {
		case !u.PasswordChangedAt().Equal(verified.PasswordChangedAt()):
			reason = domain.LoginFailedBadCredentials
		case !u.CanLogIn():
			reason = domain.LoginFailedDisabled
		case newHash != "" && u.PasswordHash() == verified.PasswordHash():
			return u.SetPasswordHash(newHash, h.deps.Now())
		}
		return nil
	})
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return domain.LoginFailedUnknownAccount, nil
	}
	return reason, err
}

// refuse returns the one reply to refused credentials, once FailureFloor
// has passed since start, and records why for stream processors: a
// LoginFailed event (naming the user when the account exists), and an
// AccountLocked event when this failure locked the account.
func (h *LoginHandler) refuse(ctx context.Context, start time.Time, user domain.UserID, reason domain.LoginFailureReason, v domain.ThrottleVerdict) error {
	h.failed(ctx, user, reason)
	if v.LockedNow != "" && user != "" {
		h.deps.Events.Record(ctx, domain.Event{UserID: user, OccurredAt: h.deps.Now(), Payload: domain.AccountLocked{Scope: v.LockedNow}})
	}
	h.floor(ctx, start)
	return errBadCredentials()
}

// floor waits until FailureFloor has passed since start.
func (h *LoginHandler) floor(ctx context.Context, start time.Time) {
	if wait := h.cfg.FailureFloor - h.deps.Now().Sub(start); wait > 0 {
		h.deps.Sleep(ctx, wait)
	}
}

// failed records a LoginFailed event.
func (h *LoginHandler) failed(ctx context.Context, user domain.UserID, reason domain.LoginFailureReason) {
	h.deps.Events.Record(ctx, domain.Event{UserID: user, OccurredAt: h.deps.Now(), Payload: domain.LoginFailed{Reason: reason}})
}

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// unverified answers an attempt whose password the hasher refused to check
// (err): it is undecided, not failed, so its count is undone and no
// LoginFailed recorded, and the reply does not wait for FailureFloor, which
// hides how long a verification takes. The count is undone even when the
// request's deadline has passed, within cancelTimeout.
func (h *LoginHandler) unverified(ctx context.Context, a domain.LoginAttempt, v domain.ThrottleVerdict, err error) error {
	ctx, stop := context.WithTimeout(context.WithoutCancel(ctx), cancelTimeout)
	defer stop()
	h.cancel(ctx, a, v)
	return err
}

// cancelTimeout bounds undoing the count of an attempt the hasher refused,
// which may be refused because its deadline has passed.
const cancelTimeout = time.Second

// cancel undoes the count of an attempt that could not be decided, so that
// an outage locks nobody out. It is best effort: the count expires anyway.
func (h *LoginHandler) cancel(ctx context.Context, a domain.LoginAttempt, v domain.ThrottleVerdict) {
	if v.AccountLocked {
		return // refused attempts are not counted
	}
	if err := settle(ctx, func(ctx context.Context) error { return h.deps.Throttle.Cancel(ctx, a) }); err != nil {
		h.deps.Logger.Warn("cancel login attempt", "err", err)
	}
}

// settleTimeout bounds the throttle's bookkeeping of an attempt once the
// request's own deadline no longer does.
const settleTimeout = 2 * time.Second

// settle runs f, the throttle's bookkeeping of an attempt that was decided
// (or could not be), even when the request's deadline passed meanwhile, as
// it may while argon2 runs behind a backlog: the caller then sends the
// login again, and an attempt left reserved would count as a failure each
// time, until the owner's right password locked the account.
func settle(ctx context.Context, f func(context.Context) error) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), settleTimeout)
	defer cancel()
	return f(ctx)
}

// newHash hashes the password with the current parameters, to replace a hash
// made with old ones or with a legacy algorithm. It returns "" when hashing
// fails, or would have to wait for a busy hasher: the login succeeds either
// way, and a later one tries again. So a rehash never delays a login nor
// takes a hasher's slot from a request that waits for one.
func (h *LoginHandler) newHash(ctx context.Context, user *domain.User, password string) string {
	hash, ok, err := h.deps.Hasher.HashIfIdle(ctx, password)
	if err != nil {
		h.deps.Logger.Warn("rehash password", "user_id", user.ID(), "err", err)
		return ""
	}
	if !ok {
		h.deps.Logger.Debug("rehash skipped: hasher busy", "user_id", user.ID())
	}
	return hash
}

// newSession is a session about to be opened: the rows to write and the
// reply, secrets and signed access token included.
type newSession struct {
	session *domain.Session
	refresh domain.RefreshToken
	result  LoginResult
}

// newSession draws the ids and secrets of a session for user and signs its
// first access token. Nothing is stored yet.
func (h *LoginHandler) newSession(ctx context.Context, user *domain.User, client domain.Client) (newSession, error) {
	now := h.deps.Now()
	session, err := domain.NewSession(domain.SessionID(h.deps.NewID()), user.ID(), client, now, h.cfg.SessionTTL)
	if err != nil {
		return newSession{}, err
	}
	secret, refresh, err := domain.NewRefreshToken(h.deps.Random, session, now, h.cfg.RefreshIdleTTL)
	if err != nil {
		return newSession{}, err
	}
	access, err := h.deps.Tokens.IssueAccessToken(ctx, domain.AccessClaims{
		UserID:        user.ID(),
		SessionID:     session.ID(),
		ClientID:      client.ID,
		EmailVerified: user.EmailVerified(),
	})
	if err != nil {
		return newSession{}, err
	}
	return newSession{session: session, refresh: refresh, result: LoginResult{
		UserID:                user.ID(),
		SessionID:             session.ID(),
		AccessToken:           access,
		RefreshToken:          secret,
		RefreshTokenExpiresAt: refresh.ExpiresAt,
	}}, nil
}
