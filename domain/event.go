package domain

import (
	"context"
	"time"
)

// Event is a state change for stream processors: what happened, to whom,
// and when. The request that caused it (its id, client and address) is
// added where the event is published.
type Event struct {
	UserID     UserID // empty when no account is concerned
	OccurredAt time.Time
	Payload    EventPayload
}

// EventPayload is what happened: one of the payload types below. None holds
// a password, a token or a code.
type EventPayload interface {
	isEventPayload()
}

// LoginFailureReason says why a login failed, for stream processors only:
// the caller always gets the same reply.
type LoginFailureReason string

// The reasons a login fails.
const (
	LoginFailedBadCredentials   LoginFailureReason = "BAD_CREDENTIALS"
	LoginFailedUnknownAccount   LoginFailureReason = "UNKNOWN_ACCOUNT"
	LoginFailedLocked           LoginFailureReason = "LOCKED"
	LoginFailedDisabled         LoginFailureReason = "DISABLED"
	LoginFailedEmailNotVerified LoginFailureReason = "EMAIL_NOT_VERIFIED"
)

// LockScope says who an account lock keeps out.
type LockScope string

// The scopes of an account lock, narrowest first.
const (
	// LockSource: one familiar source failed too often; the others
	// still log in.
	LockSource LockScope = "SOURCE"
	// LockUnfamiliarSources: sources the account never logged in from
	// failed too often; familiar ones still log in.
	LockUnfamiliarSources LockScope = "UNFAMILIAR_SOURCES"
	// LockAll: the account reached the ceiling of consecutive failures
	// and takes no attempt until an operator or a reset unlocks it.
	LockAll LockScope = "ALL"
)

// The event payloads.
type (
	// UserRegistered: an account was created. It carries the address:
	// mailers and CRMs need it.
	UserRegistered struct{ Email Email }
	// LoginSucceeded: a session was opened.
	LoginSucceeded struct{ SessionID SessionID }
	// LoginFailed: a login was refused, and why.
	LoginFailed struct{ Reason LoginFailureReason }
	// AccountLocked: failed logins locked the account for some sources.
	AccountLocked struct{ Scope LockScope }
	// AccountUnlocked: the account's locks were cleared.
	AccountUnlocked struct{}
	// SessionRefreshed: a session's refresh token was rotated.
	SessionRefreshed struct{ SessionID SessionID }
	// SessionRevoked: a session ended before its time; Reason is one of
	// the RevokedBy* values.
	SessionRevoked struct {
		SessionID SessionID
		Reason    string
	}
	// RefreshTokenReuseDetected: a spent refresh token was presented
	// again; its session is revoked.
	RefreshTokenReuseDetected struct{ SessionID SessionID }
	// PasswordChanged: the owner changed the password.
	PasswordChanged struct{}
	// PasswordResetRequested: a reset code went to the account's address.
	PasswordResetRequested struct{}
	// PasswordReset: the password was set with a reset code.
	PasswordReset struct{}
	// EmailVerificationRequested: a verification code went out.
	EmailVerificationRequested struct{}
	// EmailVerified: the owner proved the address.
	EmailVerified struct{}
	// AccountDisabled, AccountEnabled: an operator stopped or allowed
	// logins.
	AccountDisabled struct{}
	AccountEnabled  struct{}
	// AccountDeleted: the account's personal data was erased.
	AccountDeleted struct{}
	// SigningKeyRotated: a new key signs access tokens from SignsFrom.
	SigningKeyRotated struct {
		KeyID     string
		Algorithm string
		SignsFrom time.Time
	}
)

func (UserRegistered) isEventPayload()             {}
func (LoginSucceeded) isEventPayload()             {}
func (LoginFailed) isEventPayload()                {}
func (AccountLocked) isEventPayload()              {}
func (AccountUnlocked) isEventPayload()            {}
func (SessionRefreshed) isEventPayload()           {}
func (SessionRevoked) isEventPayload()             {}
func (RefreshTokenReuseDetected) isEventPayload()  {}
func (PasswordChanged) isEventPayload()            {}
func (PasswordResetRequested) isEventPayload()     {}
func (PasswordReset) isEventPayload()              {}
func (EmailVerificationRequested) isEventPayload() {}
func (EmailVerified) isEventPayload()              {}
func (AccountDisabled) isEventPayload()            {}
func (AccountEnabled) isEventPayload()             {}
func (AccountDeleted) isEventPayload()             {}
func (SigningKeyRotated) isEventPayload()          {}

// Events records the events a use case decides. They are published if and
// only if the request's outcome commits: with the unit of work's writes, or
// with the stored reply of a use case that wrote nothing.
type Events interface {
	// Record keeps events for the request ctx belongs to. Events recorded
	// inside a unit of work that is retried are recorded once.
	Record(ctx context.Context, events ...Event)
}

// RevokedSessions returns a SessionRevoked event for each id.
func RevokedSessions(user UserID, reason string, now time.Time, ids ...SessionID) []Event {
	events := make([]Event, len(ids))
	for i, id := range ids {
		events[i] = Event{UserID: user, OccurredAt: now, Payload: SessionRevoked{SessionID: id, Reason: reason}}
	}
	return events
}
