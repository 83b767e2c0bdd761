package domain

import (
	"context"
	"time"
)

// LoginAttempt names the account and the source of a login attempt for
// throttling. Account is the normalised e-mail address as typed, whether or
// not such an account exists, so that throttling never tells the difference.
type LoginAttempt struct {
	Account Email
	Source  string // the end user's IP address; may be empty
}

// ThrottleVerdict says whether a login attempt may be tried.
type ThrottleVerdict struct {
	// AccountLocked is true after too many consecutive failures on the
	// account; the attempt must fail exactly as a wrong password would.
	AccountLocked bool
	// SourceRetryAfter is positive when the source has failed too often; the
	// attempt is refused with CodeRateLimited.
	SourceRetryAfter time.Duration
}

// LoginThrottle counts login failures per account and per source.
// Implementations fail closed: when their store is down they return
// CodeUnavailable and the login is refused.
type LoginThrottle interface {
	// Check returns the verdict for an attempt, before the password is
	// verified.
	Check(ctx context.Context, a LoginAttempt) (ThrottleVerdict, error)
	// Failed records a failed attempt.
	Failed(ctx context.Context, a LoginAttempt) error
	// Succeeded clears the account's consecutive failures.
	Succeeded(ctx context.Context, a LoginAttempt) error
}
