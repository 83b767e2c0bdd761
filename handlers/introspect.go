package handlers

import (
	"context"
	"strings"
	"time"

	"github.com/authworker/authworker/domain"
)

// Introspect asks whether a token is active, as RFC 7662 defines it.
type Introspect struct {
	Token string
	// TokenTypeHint is "access_token", "refresh_token" or empty. A wrong
	// hint only costs a second lookup.
	TokenTypeHint string
	Client        domain.Client
}

// Token types of an IntrospectResult.
const (
	TokenTypeAccess  = "access_token"
	TokenTypeRefresh = "refresh_token"
)

// IntrospectResult is RFC 7662's answer: when Active is false, every other
// field is empty, whatever the reason.
type IntrospectResult struct {
	Active        bool
	TokenType     string
	UserID        domain.UserID
	SessionID     domain.SessionID
	ClientID      string
	Issuer        string
	Audience      []string
	ExpiresAt     time.Time
	IssuedAt      time.Time
	ID            string // jti, for access tokens
	EmailVerified bool
}

// IntrospectDeps are the collaborators of an IntrospectHandler.
type IntrospectDeps struct {
	Sessions    domain.SessionRepository
	Tokens      domain.TokenIssuer
	Revocations domain.RevocationList
	Now         Clock
}

// IntrospectHandler answers introspection requests.
type IntrospectHandler struct {
	deps IntrospectDeps
}

// NewIntrospectHandler returns an IntrospectHandler.
func NewIntrospectHandler(deps IntrospectDeps) *IntrospectHandler {
	return &IntrospectHandler{deps: deps}
}

// Handle reports whether the token is active. An access token is active
// when its signature, issuer, audience, type and expiry hold and its session
// is not revoked: no password hashing, no database, one read of the
// revocation list. A refresh token is active when it is stored, unused and
// unexpired, and its session is live. It fails closed: CodeUnavailable when
// revocation cannot be checked. It never fails for a bad token: that is an
// inactive one.
func (h *IntrospectHandler) Handle(ctx context.Context, cmd Introspect) (IntrospectResult, error) {
	switch cmd.Kind() {
	case TokenTypeAccess:
		return h.access(ctx, cmd.Token)
	case TokenTypeRefresh:
		return h.refresh(ctx, cmd.Token)
	}
	return IntrospectResult{}, nil
}

// Kind returns the kind of token cmd's token is looked up as, by its shape
// and the hint: TokenTypeAccess (verified, then checked against the
// revocation list), TokenTypeRefresh (looked up among the stored refresh
// tokens), or "" for a token of neither shape, inactive without a lookup.
func (cmd Introspect) Kind() string {
	switch {
	case looksLikeJWT(cmd.Token) && cmd.TokenTypeHint != TokenTypeRefresh:
		return TokenTypeAccess
	case domain.WellFormedRefreshToken(cmd.Token):
		return TokenTypeRefresh
	case looksLikeJWT(cmd.Token):
		return TokenTypeAccess
	}
	return ""
}

func (h *IntrospectHandler) access(ctx context.Context, token string) (IntrospectResult, error) {
	claims, err := h.deps.Tokens.VerifyAccessToken(token)
	if err != nil {
		return IntrospectResult{}, nil
	}
	revoked, err := h.deps.Revocations.Revoked(ctx, claims.SessionID)
	if err != nil || revoked {
		return IntrospectResult{}, err
	}
	return IntrospectResult{
		Active: true, TokenType: TokenTypeAccess,
		UserID: claims.UserID, SessionID: claims.SessionID, ClientID: claims.ClientID,
		Issuer: claims.Issuer, Audience: claims.Audience,
		ExpiresAt: claims.ExpiresAt, IssuedAt: claims.IssuedAt, ID: claims.ID,
		EmailVerified: claims.EmailVerified,
	}, nil
}

func (h *IntrospectHandler) refresh(ctx context.Context, token string) (IntrospectResult, error) {
	grant, err := h.deps.Sessions.RefreshGrant(ctx, domain.HashRefreshToken(token))
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return IntrospectResult{}, nil
	}
	if err != nil {
		return IntrospectResult{}, err
	}
	tok, session, user := grant.Token, grant.Session, grant.User
	now := h.deps.Now()
	if tok.Used() || !now.Before(tok.ExpiresAt) || !session.Live(now) {
		return IntrospectResult{}, nil
	}
	if user == nil || !user.CanRefresh(session.AuthenticatedAt()) {
		return IntrospectResult{}, nil
	}
	return IntrospectResult{
		Active: true, TokenType: TokenTypeRefresh,
		UserID: user.ID(), SessionID: session.ID(), ClientID: session.ClientID(),
		ExpiresAt: tok.ExpiresAt, IssuedAt: tok.CreatedAt, EmailVerified: user.EmailVerified(),
	}, nil
}

// looksLikeJWT reports whether s has the shape of a compact JWS: three
// dot-separated parts. The verifier does the real checking.
func looksLikeJWT(s string) bool {
	return strings.Count(s, ".") == 2
}
