package domain

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"fmt"
	"io"
	"time"
)

// SessionID identifies a session. It is a UUID in text form and becomes the
// sid claim of access tokens.
type SessionID string

// Session is one login: it lives until its absolute expiry or until it is
// revoked, and is extended by rotating its refresh token.
type Session struct {
	id        SessionID
	userID    UserID
	clientID  string
	ip        string
	userAgent string
	createdAt time.Time
	expiresAt time.Time
	revokedAt time.Time // zero while the session lives
	// authenticatedAt is when the session last proved the password: its
	// opening, or a password change made through it.
	authenticatedAt time.Time
}

// SessionSnapshot is the stored form of a Session, for storage adapters only.
type SessionSnapshot struct {
	ID              SessionID
	UserID          UserID
	ClientID        string
	IP              string
	UserAgent       string
	CreatedAt       time.Time
	ExpiresAt       time.Time
	RevokedAt       time.Time // zero while the session lives
	AuthenticatedAt time.Time
}

// NewSession opens a session for a user that lasts at most ttl.
func NewSession(id SessionID, userID UserID, client Client, now time.Time, ttl time.Duration) (*Session, error) {
	if id == "" || userID == "" {
		return nil, Errorf(CodeInternal, "new session: empty id")
	}
	if ttl <= 0 {
		return nil, Errorf(CodeInternal, "new session: non-positive lifetime %v", ttl)
	}
	return &Session{
		id:              id,
		userID:          userID,
		clientID:        client.ID,
		ip:              client.IP,
		userAgent:       client.UserAgent,
		createdAt:       now,
		expiresAt:       now.Add(ttl),
		authenticatedAt: now,
	}, nil
}

// RestoreSession rebuilds a Session from its stored form.
func RestoreSession(s SessionSnapshot) *Session {
	return &Session{
		id:              s.ID,
		userID:          s.UserID,
		clientID:        s.ClientID,
		ip:              s.IP,
		userAgent:       s.UserAgent,
		createdAt:       s.CreatedAt,
		expiresAt:       s.ExpiresAt,
		revokedAt:       s.RevokedAt,
		authenticatedAt: s.AuthenticatedAt,
	}
}

// Snapshot returns the stored form of s.
func (s *Session) Snapshot() SessionSnapshot {
	return SessionSnapshot{
		ID:              s.id,
		UserID:          s.userID,
		ClientID:        s.clientID,
		IP:              s.ip,
		UserAgent:       s.userAgent,
		CreatedAt:       s.createdAt,
		ExpiresAt:       s.expiresAt,
		RevokedAt:       s.revokedAt,
		AuthenticatedAt: s.authenticatedAt,
	}
}

// ID returns the session's id.
func (s *Session) ID() SessionID { return s.id }

// UserID returns the id of the session's user.
func (s *Session) UserID() UserID { return s.userID }

// ClientID returns the id of the client the session was opened through.
func (s *Session) ClientID() string { return s.clientID }

// CreatedAt returns when the session was opened.
func (s *Session) CreatedAt() time.Time { return s.createdAt }

// AuthenticatedAt returns when the session last proved the password.
func (s *Session) AuthenticatedAt() time.Time { return s.authenticatedAt }

// Revoked reports whether the session was ended.
func (s *Session) Revoked() bool { return !s.revokedAt.IsZero() }

// Live reports whether the session may be used at now: not revoked and not
// past its absolute expiry.
func (s *Session) Live(now time.Time) bool { return !s.Revoked() && now.Before(s.expiresAt) }

// ExpiresAt returns the absolute expiry: no refresh extends a session past it.
func (s *Session) ExpiresAt() time.Time { return s.expiresAt }

// RefreshTokenBytes is the entropy of a refresh token: 256 bits.
const RefreshTokenBytes = 32

// RefreshToken is the stored half of an opaque refresh token: only the
// SHA-256 of the secret is kept, so a copy of the database cannot be used to
// refresh. A plain hash suffices because the secret has 256 bits of entropy.
type RefreshToken struct {
	Hash      []byte
	SessionID SessionID
	CreatedAt time.Time
	ExpiresAt time.Time // idle expiry, never past the session's
	// UsedAt is when the token was rotated (zero while it is unused).
	// Presenting a used token again is reuse: the session is revoked.
	UsedAt time.Time
}

// Used reports whether the token was rotated already.
func (t RefreshToken) Used() bool { return !t.UsedAt.IsZero() }

// NewRefreshToken draws a fresh secret from random for a session. It returns
// the secret, which goes to the client once and is never stored, and the
// token to store. The token expires after idle, or with the session if sooner.
func NewRefreshToken(random io.Reader, s *Session, now time.Time, idle time.Duration) (string, RefreshToken, error) {
	var b [RefreshTokenBytes]byte
	if _, err := io.ReadFull(random, b[:]); err != nil {
		return "", RefreshToken{}, fmt.Errorf("draw refresh token: %w", err)
	}
	secret := base64.RawURLEncoding.EncodeToString(b[:])
	expires := now.Add(idle)
	if expires.After(s.expiresAt) {
		expires = s.expiresAt
	}
	return secret, RefreshToken{
		Hash:      HashRefreshToken(secret),
		SessionID: s.id,
		CreatedAt: now,
		ExpiresAt: expires,
	}, nil
}

// HashRefreshToken returns the stored form of a refresh token secret.
func HashRefreshToken(secret string) []byte {
	sum := sha256.Sum256([]byte(secret))
	return sum[:]
}

// Matches reports, in constant time, whether secret is this token's secret.
func (t RefreshToken) Matches(secret string) bool {
	return subtle.ConstantTimeCompare(t.Hash, HashRefreshToken(secret)) == 1
}

// CheckRefreshToken returns a CodeInternal error unless t can be stored as
// one of s's refresh tokens: s has a valid id, t belongs to s, and t's hash
// is a SHA-256. Storage adapters call it before writing.
func (s *Session) CheckRefreshToken(t RefreshToken) error {
	switch {
	case !ValidID(string(s.id)):
		return Errorf(CodeInternal, "session id is not a UUID")
	case t.SessionID != s.id:
		return Errorf(CodeInternal, "refresh token belongs to another session")
	case len(t.Hash) != sha256.Size:
		return Errorf(CodeInternal, "refresh token hash is not a SHA-256")
	}
	return nil
}

// Reasons a session was revoked, as stored with it.
const (
	RevokedByLogout          = "logout"
	RevokedByLogoutAll       = "logout_all"
	RevokedByReuse           = "refresh_token_reuse"
	RevokedByPasswordChange  = "password_changed"
	RevokedByPasswordReset   = "password_reset"
	RevokedByAccountDisabled = "account_disabled"
	RevokedByAccountDeleted  = "account_deleted"
)

// RefreshGrant is a refresh token with its session and the session's user.
type RefreshGrant struct {
	Token   RefreshToken
	Session *Session
	// User is nil when the account is erased.
	User *User
}

// SessionRepository stores sessions and their refresh tokens. Revocation is
// durable here; RevocationList is the fast copy.
type SessionRepository interface {
	// CreateSession stores a new session together with its first refresh
	// token, atomically: on error neither is stored. It returns CodeNotFound
	// when the session's user does not exist (e.g. erased since it was
	// loaded), CodeConflict when a session with the same ID or a token with
	// the same hash is already stored, CodeInternal when first belongs to
	// another session, and CodeUnavailable when the store is down.
	CreateSession(ctx context.Context, s *Session, first RefreshToken) error

	// RefreshToken returns the stored refresh token with the hash and its
	// session. It returns CodeNotFound when there is none and
	// CodeUnavailable when the store is down.
	RefreshToken(ctx context.Context, hash []byte) (RefreshToken, *Session, error)

	// RefreshGrant returns, in one read, what deciding on a refresh needs:
	// the stored refresh token with the hash, its session, and the
	// session's user, nil when the account is erased. It returns
	// CodeNotFound when there is no such token and CodeUnavailable when
	// the store is down.
	RefreshGrant(ctx context.Context, hash []byte) (RefreshGrant, error)

	// RotateRefreshToken marks the token with the hash used at next's
	// creation time and stores next, its successor in the same session, in
	// one conditional step: only if the token is unused and unexpired then.
	// Of concurrent rotations of one token, exactly one succeeds; on error
	// nothing changes. It returns CodeConflict when the token is used or
	// expired or a token with next's hash is stored already, CodeNotFound
	// when it does not exist, CodeInternal when next belongs to another
	// session, and CodeUnavailable when the store is down.
	RotateRefreshToken(ctx context.Context, hash []byte, next RefreshToken) error

	// Session returns the session with the id: CodeNotFound when there is
	// none, CodeUnavailable when the store is down.
	Session(ctx context.Context, id SessionID) (*Session, error)

	// RevokeSession ends the session at now for reason, unless it is
	// revoked already, and reports whether it did. It returns CodeNotFound
	// when there is no such session and CodeUnavailable when the store is
	// down.
	RevokeSession(ctx context.Context, id SessionID, reason string, now time.Time) (bool, error)

	// RevokeUserSessions ends, at now for reason, every session of the
	// user but except (none when empty) that is not revoked and has not
	// expired, or expired less than a day before now, and returns the ids
	// it ended, in no particular order. Recently expired sessions are ended
	// too because an access token issued shortly before its session
	// expired outlives it.
	// An unknown user has none; that is not an error. It returns
	// CodeUnavailable when the store is down.
	RevokeUserSessions(ctx context.Context, user UserID, except SessionID, reason string, now time.Time) ([]SessionID, error)

	// Reauthenticate records that the session proved the password at now
	// (a password change made through it), so that it outlives the change.
	// It returns CodeNotFound when there is no such session.
	Reauthenticate(ctx context.Context, id SessionID, now time.Time) error

	// RevokedSince returns the ids of the sessions revoked at or after
	// since, in no particular order: those whose access tokens may still be
	// live, to rebuild the fast revocation list. It returns CodeUnavailable
	// when the store is down.
	RevokedSince(ctx context.Context, since time.Time) ([]SessionID, error)
}

// RevocationList is the fast copy of the revoked sessions that the checks of
// access tokens read: Redis, rebuilt from the SessionRepository when it
// comes back empty. It holds each revoked session for as long as an access
// token of it can live.
type RevocationList interface {
	// Revoke adds sessions to the list. It returns CodeUnavailable when
	// the list cannot take them; the revocations are durable anyway, and
	// reach the list at its next rebuild.
	Revoke(ctx context.Context, ids ...SessionID) error
	// Revoked reports whether the session is revoked. It returns
	// CodeUnavailable when it cannot tell: the check fails closed.
	Revoked(ctx context.Context, id SessionID) (bool, error)
}

// WellFormedRefreshToken reports whether s has the form of a refresh token
// secret: 43 characters of unpadded base64url (256 bits). Anything else is
// refused before any lookup.
func WellFormedRefreshToken(s string) bool {
	if len(s) != 43 {
		return false
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(s)
	return err == nil && len(b) == RefreshTokenBytes
}
