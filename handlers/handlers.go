// Package handlers holds the use cases of authworker, one per file: a
// command, a handler with explicit dependencies, and Handle. Handlers speak
// domain types and domain errors only; consumers decode requests into
// commands and map results and error codes onto replies.
package handlers

import (
	"time"

	"github.com/authworker/authworker/domain"
)

// Clock returns the current time. Tests inject a fixed one.
type Clock func() time.Time

// IDGenerator returns a new unique id (a UUID in text form) for users and
// sessions.
type IDGenerator func() string

// errBadCredentials is the one reply to every failed login: unknown user,
// wrong password, locked and disabled account alike, so that the reply never
// tells whether an account exists.
func errBadCredentials() error {
	return domain.Errorf(domain.CodeUnauthorized, "invalid email or password")
}
