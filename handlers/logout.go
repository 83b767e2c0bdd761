package handlers

import (
	"context"
	"log/slog"

	"github.com/authworker/authworker/domain"
)

// Logout asks to end one session, named by its refresh token or by one of
// its access tokens.
type Logout struct {
	RefreshToken string
	AccessToken  string
	Client       domain.Client
}

// LogoutAll asks to end every session of the user an access token names.
type LogoutAll struct {
	AccessToken string
	Client      domain.Client
}

// LogoutDeps are the collaborators of the logout handlers.
type LogoutDeps struct {
	Work        UnitOfWork
	Sessions    domain.SessionRepository
	Tokens      domain.TokenIssuer
	Revocations domain.RevocationList
	Events      domain.Events
	Now         Clock
	Logger      *slog.Logger
}

// LogoutHandler ends one session.
type LogoutHandler struct {
	deps LogoutDeps
}

// NewLogoutHandler returns a LogoutHandler.
func NewLogoutHandler(deps LogoutDeps) *LogoutHandler {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &LogoutHandler{deps: deps}
}

// Handle revokes the session, durably, then lists it as revoked so that its
// access tokens fail introspection at once. Ending a session that has ended
// already is Done too. A token that names no session gets CodeUnauthorized;
// a request with neither token, or both, CodeInvalid.
func (h *LogoutHandler) Handle(ctx context.Context, cmd Logout) (Done, error) {
	var (
		id   domain.SessionID
		user domain.UserID
	)
	switch {
	case (cmd.RefreshToken == "") == (cmd.AccessToken == ""):
		return Done{}, domain.Invalid("refreshToken", "give either refreshToken or accessToken")
	case cmd.RefreshToken != "":
		if !domain.WellFormedRefreshToken(cmd.RefreshToken) {
			return Done{}, errInvalidRefreshToken()
		}
		_, session, err := h.deps.Sessions.RefreshToken(ctx, domain.HashRefreshToken(cmd.RefreshToken))
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return Done{}, errInvalidRefreshToken()
		}
		if err != nil {
			return Done{}, err
		}
		id, user = session.ID(), session.UserID()
	default:
		claims, err := h.deps.Tokens.VerifyAccessToken(cmd.AccessToken)
		if err != nil {
			return Done{}, errInvalidAccessToken()
		}
		id, user = claims.SessionID, claims.UserID
	}
	now := h.deps.Now()
	done, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		ended, err := h.deps.Sessions.RevokeSession(ctx, id, domain.RevokedByLogout, now)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return Done{}, errInvalidAccessToken()
		}
		if ended {
			h.deps.Events.Record(ctx, domain.RevokedSessions(user, domain.RevokedByLogout, now, id)...)
		}
		return Done{}, err
	})
	if err == nil {
		listRevoked(ctx, h.deps.Revocations, h.deps.Logger, id)
	}
	return done, err
}

// LogoutAllHandler ends every session of a user.
type LogoutAllHandler struct {
	deps LogoutDeps
}

// NewLogoutAllHandler returns a LogoutAllHandler.
func NewLogoutAllHandler(deps LogoutDeps) *LogoutAllHandler {
	if deps.Logger == nil {
		deps.Logger = slog.New(slog.DiscardHandler)
	}
	return &LogoutAllHandler{deps: deps}
}

// Handle revokes every live session of the token's user, the token's own
// included, and lists them as revoked. The token must verify and its
// session must not be revoked already: CodeUnauthorized otherwise.
func (h *LogoutAllHandler) Handle(ctx context.Context, cmd LogoutAll) (Done, error) {
	claims, err := authenticate(ctx, h.deps.Tokens, h.deps.Revocations, cmd.AccessToken)
	if err != nil {
		return Done{}, err
	}
	now := h.deps.Now()
	var ids []domain.SessionID
	done, err := Commit(ctx, h.deps.Work, func(ctx context.Context) (Done, error) {
		var err error
		ids, err = h.deps.Sessions.RevokeUserSessions(ctx, claims.UserID, "", domain.RevokedByLogoutAll, now)
		h.deps.Events.Record(ctx, domain.RevokedSessions(claims.UserID, domain.RevokedByLogoutAll, now, ids...)...)
		return Done{}, err
	})
	if err == nil {
		listRevoked(ctx, h.deps.Revocations, h.deps.Logger, ids...)
	}
	return done, err
}

// listRevoked puts revoked sessions on the revocation list, best effort:
// the revocation is durable, and the list's periodic sync repairs a
// failure within seconds.
func listRevoked(ctx context.Context, list domain.RevocationList, logger *slog.Logger, ids ...domain.SessionID) {
	if len(ids) == 0 {
		return
	}
	if err := list.Revoke(ctx, ids...); err != nil {
		logger.Warn("list revoked sessions", "count", len(ids), "err", err)
	}
}
