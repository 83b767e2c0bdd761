package handlers

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"time"

	"github.com/authworker/authworker/domain"
)

// Refresh asks for a new token pair for the session of a refresh token.
type Refresh struct {
	RefreshToken string
	Client       domain.Client
}

// RefreshDeps are the collaborators of a RefreshHandler.
type RefreshDeps struct {
	Work        UnitOfWork
	Sessions    domain.SessionRepository
	Throttle    domain.LoginThrottle // is the account locked?
	Tokens      domain.TokenIssuer
	Revocations domain.RevocationList
	Events      domain.Events
	Now         Clock
	Random      io.Reader // the source of refresh tokens: crypto/rand in production
	Logger      *slog.Logger
}

// RefreshHandler rotates refresh tokens.
type RefreshHandler struct {
	deps RefreshDeps
	cfg  SessionConfig
}

// NewRefreshHandler returns a RefreshHandler.
func NewRefreshHandler(deps RefreshDeps, cfg SessionConfig) *RefreshHandler {
	cfg.setDefaults()
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &RefreshHandler{deps: deps, cfg: cfg}
}

// errInvalidRefreshToken is the one reply to every refused refresh, so that
// a caller learns nothing about why: unknown, expired, used, revoked, or an
// account that may no longer refresh.
func errInvalidRefreshToken() error {
	return domain.Errorf(domain.CodeUnauthorized, "invalid refresh token")
}

// errTokenReused is the outcome of presenting a rotated token: the session
// is revoked with it. Its reply is errInvalidRefreshToken's.
var errTokenReused = &domain.Error{Code: domain.CodeUnauthorized, Message: "invalid refresh token"}

// Handle rotates the refresh token: it is marked used and a successor is
// stored in one conditional step, and a new access token signed. It returns
// a LoginResult for the same session.
//
// Presenting a token that was rotated already (by anyone, other than the
// exact retry of the request that rotated it, which the application answers
// from its stored reply) is reuse: the token is in two hands, so the whole
// session is revoked, its successor included, and the request refused. Of
// concurrent refreshes with one token, exactly one rotates it and the others
// are reuse. An expired token, a session past its absolute expiry or
// revoked, a disabled, locked or erased account, and a session that has not
// proved the password since it changed, are refused alike with
// CodeUnauthorized.
func (h *RefreshHandler) Handle(ctx context.Context, cmd Refresh) (LoginResult, error) {
	if !domain.WellFormedRefreshToken(cmd.RefreshToken) {
		return LoginResult{}, errInvalidRefreshToken()
	}
	hash := domain.HashRefreshToken(cmd.RefreshToken)
	grant, err := h.deps.Sessions.RefreshGrant(ctx, hash)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return LoginResult{}, errInvalidRefreshToken()
	}
	if err != nil {
		return LoginResult{}, err
	}
	tok, session, user := grant.Token, grant.Session, grant.User
	if tok.Used() {
		return LoginResult{}, h.revokeForReuse(ctx, session)
	}
	now := h.deps.Now()
	if !session.Live(now) || !now.Before(tok.ExpiresAt) {
		return LoginResult{}, errInvalidRefreshToken()
	}
	if user == nil || !user.CanRefresh(session.AuthenticatedAt()) { // erased, disabled, or the password changed
		return LoginResult{}, errInvalidRefreshToken()
	}
	locked, err := h.deps.Throttle.Locked(ctx, user.Email())
	if err != nil {
		return LoginResult{}, err
	}
	if locked {
		return LoginResult{}, errInvalidRefreshToken()
	}

	secret, next, err := domain.NewRefreshToken(h.deps.Random, session, now, h.cfg.RefreshIdleTTL)
	if err != nil {
		return LoginResult{}, err
	}
	access, err := h.deps.Tokens.IssueAccessToken(ctx, domain.AccessClaims{
		UserID: user.ID(), SessionID: session.ID(), ClientID: session.ClientID(), EmailVerified: user.EmailVerified(),
	})
	if err != nil {
		return LoginResult{}, err
	}
	result := LoginResult{
		UserID: user.ID(), SessionID: session.ID(), AccessToken: access,
		RefreshToken: secret, RefreshTokenExpiresAt: next.ExpiresAt,
	}
	result, err = Commit(ctx, h.deps.Work, func(ctx context.Context) (LoginResult, error) {
		err := h.deps.Sessions.RotateRefreshToken(ctx, hash, next)
		switch domain.ErrorCode(err) {
		case "":
			h.deps.Events.Record(ctx, domain.Event{UserID: user.ID(), OccurredAt: now, Payload: domain.SessionRefreshed{SessionID: session.ID()}})
			return result, nil
		case domain.CodeConflict: // rotated meanwhile: another request holds it too
			return LoginResult{}, h.revoke(ctx, session, now)
		case domain.CodeNotFound:
			return LoginResult{}, errInvalidRefreshToken()
		}
		return LoginResult{}, err
	})
	if errors.Is(err, errTokenReused) {
		listRevoked(ctx, h.deps.Revocations, h.deps.Logger, session.ID())
	}
	return result, err
}

// revokeForReuse revokes the session of a token presented after it was
// rotated, and returns the refusal.
func (h *RefreshHandler) revokeForReuse(ctx context.Context, session *domain.Session) error {
	now := h.deps.Now()
	_, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		return Done{}, h.revoke(ctx, session, now)
	})
	if errors.Is(err, errTokenReused) {
		h.deps.Logger.Warn("rotated refresh token presented again; session revoked", "session_id", session.ID())
		listRevoked(ctx, h.deps.Revocations, h.deps.Logger, session.ID())
	}
	return err
}

// revoke ends a session whose spent refresh token was presented again,
// inside the unit of work, and returns errTokenReused. Reuse is reported
// every time; the revocation only the first time.
func (h *RefreshHandler) revoke(ctx context.Context, session *domain.Session, now time.Time) error {
	ended, err := h.deps.Sessions.RevokeSession(ctx, session.ID(), domain.RevokedByReuse, now)
	if err != nil {
		return err
	}
	h.deps.Events.Record(ctx, domain.Event{
		UserID: session.UserID(), OccurredAt: now, Payload: domain.RefreshTokenReuseDetected{SessionID: session.ID()},
	})
	if ended {
		h.deps.Events.Record(ctx, domain.RevokedSessions(session.UserID(), domain.RevokedByReuse, now, session.ID())...)
	}
	return errTokenReused
}
