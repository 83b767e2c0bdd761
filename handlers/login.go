package handlers

import (
	"context"
	"fmt"
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

func (c *SessionConfig) setDefaults() {
	if c.SessionTTL == 0 {
		c.SessionTTL = 30 * 24 * time.Hour
	}
	if c.RefreshIdleTTL == 0 {
		c.RefreshIdleTTL = 7 * 24 * time.Hour
	}
}

// LoginDeps are the collaborators of a LoginHandler.
type LoginDeps struct {
	Users    domain.UserRepository
	Sessions domain.SessionRepository
	Hasher   domain.PasswordHasher
	Throttle domain.LoginThrottle
	Tokens   domain.TokenIssuer
	NewID    IDGenerator
	Now      Clock
	Random   io.Reader // the source of refresh tokens: crypto/rand in production
	Logger   *slog.Logger
}

// LoginHandler verifies credentials and opens sessions.
type LoginHandler struct {
	deps LoginDeps
	cfg  SessionConfig
}

// NewLoginHandler returns a LoginHandler.
func NewLoginHandler(deps LoginDeps, cfg SessionConfig) *LoginHandler {
	cfg.setDefaults()
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
func (h *LoginHandler) Handle(ctx context.Context, cmd Login) (LoginResult, error) {
	email, err := domain.ParseEmail(cmd.Email)
	if err != nil {
		return LoginResult{}, err
	}
	if cmd.Password == "" {
		return LoginResult{}, domain.Invalid("password", "password is required")
	}
	attempt := domain.LoginAttempt{Account: email, Source: cmd.Client.IP}
	verdict, err := h.deps.Throttle.Check(ctx, attempt)
	if err != nil {
		return LoginResult{}, fmt.Errorf("check throttle: %w", err)
	}
	if verdict.SourceRetryAfter > 0 {
		return LoginResult{}, &domain.Error{
			Code:       domain.CodeRateLimited,
			Message:    "too many failed logins from this source",
			RetryAfter: verdict.SourceRetryAfter,
		}
	}

	user, err := h.deps.Users.UserByEmail(ctx, email)
	if err != nil && domain.ErrorCode(err) != domain.CodeNotFound {
		return LoginResult{}, fmt.Errorf("load user: %w", err)
	}
	if err != nil || verdict.AccountLocked {
		h.deps.Hasher.VerifyDummy(cmd.Password)
		if !verdict.AccountLocked {
			// Attempts on a locked account are not counted: the lock
			// already answers them, and counting would only extend it.
			if err := h.deps.Throttle.Failed(ctx, attempt); err != nil {
				return LoginResult{}, fmt.Errorf("record failed login: %w", err)
			}
		}
		return LoginResult{}, errBadCredentials()
	}

	match, rehash, err := h.deps.Hasher.Verify(cmd.Password, user.PasswordHash())
	if err != nil {
		// An unreadable stored hash is a data problem to fix, not a reason
		// to answer differently.
		h.deps.Logger.Error("unreadable password hash", "user_id", user.ID(), "err", err)
	}
	if !match || !user.CanLogIn() {
		if err := h.deps.Throttle.Failed(ctx, attempt); err != nil {
			return LoginResult{}, fmt.Errorf("record failed login: %w", err)
		}
		return LoginResult{}, errBadCredentials()
	}
	if err := h.deps.Throttle.Succeeded(ctx, attempt); err != nil {
		return LoginResult{}, fmt.Errorf("record login: %w", err)
	}
	if rehash {
		h.rehash(ctx, user, cmd.Password)
	}
	return h.openSession(ctx, user, cmd.Client)
}

// rehash replaces a hash made with old parameters or a legacy algorithm.
// It is best effort: the login succeeds either way and the next login
// tries again.
func (h *LoginHandler) rehash(ctx context.Context, user *domain.User, password string) {
	hash, err := h.deps.Hasher.Hash(password)
	if err == nil {
		old := user.PasswordHash()
		err = h.deps.Users.UpdateUser(ctx, user.ID(), func(u *domain.User) error {
			if u.PasswordHash() != old {
				return nil // changed meanwhile; keep the newer password
			}
			return u.SetPasswordHash(hash, h.deps.Now())
		})
	}
	if err != nil {
		h.deps.Logger.Warn("rehash password", "user_id", user.ID(), "err", err)
	}
}

func (h *LoginHandler) openSession(ctx context.Context, user *domain.User, client domain.Client) (LoginResult, error) {
	now := h.deps.Now()
	session, err := domain.NewSession(domain.SessionID(h.deps.NewID()), user.ID(), client, now, h.cfg.SessionTTL)
	if err != nil {
		return LoginResult{}, err
	}
	secret, refresh, err := domain.NewRefreshToken(h.deps.Random, session, now, h.cfg.RefreshIdleTTL)
	if err != nil {
		return LoginResult{}, err
	}
	if err := h.deps.Sessions.CreateSession(ctx, session, refresh); err != nil {
		return LoginResult{}, fmt.Errorf("create session: %w", err)
	}
	access, err := h.deps.Tokens.IssueAccessToken(ctx, domain.AccessClaims{
		UserID:    user.ID(),
		SessionID: session.ID(),
		ClientID:  client.ID,
	})
	if err != nil {
		return LoginResult{}, fmt.Errorf("issue access token: %w", err)
	}
	return LoginResult{
		UserID:                user.ID(),
		SessionID:             session.ID(),
		AccessToken:           access,
		RefreshToken:          secret,
		RefreshTokenExpiresAt: refresh.ExpiresAt,
	}, nil
}
