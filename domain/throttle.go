package domain

import (
	"context"
	"time"
)

// LoginAttempt names the account and the source of a login attempt for
// throttling. Account is the normalised e-mail address as typed, whether or
// not such an account exists, so that throttling never tells the difference.
// Source is Client.Source(): the end user's address (IPv6 by /64) or, when
// the calling service gave none, the service.
type LoginAttempt struct {
	Account Email
	Source  string
}

// ThrottleVerdict says whether a login attempt may be tried.
type ThrottleVerdict struct {
	// AccountLocked is true when the account takes no attempts from this
	// source now; the attempt must fail exactly as a wrong password would.
	AccountLocked bool
	// SourceRetryAfter is positive when the source has failed too often
	// across accounts; the attempt is refused with CodeRateLimited.
	SourceRetryAfter time.Duration
	// Familiar is true when the account logged in from this source before.
	Familiar bool
	// LockedNow is the widest lock that counting this attempt set, if
	// any: if the attempt fails, the account has just been locked for those
	// sources.
	LockedNow LockScope
}

// LoginThrottle limits failed logins per account and per source, without
// handing attackers a cheap way to lock an owner out: failures from sources
// the account has never logged in from lock out only such unfamiliar
// sources, while the owner's familiar sources keep their own, separate
// count; and at most 100 consecutive failures are allowed per account (NIST
// SP 800-63B), the last of them kept for familiar sources.
//
// Implementations fail closed: when their store is down they return
// CodeUnavailable and the login is refused.
type LoginThrottle interface {
	// Begin decides on an attempt before the password is verified and, if
	// it may go on, counts it as a failure in the same atomic step, so that
	// concurrent attempts cannot slip past a limit. An attempt that is
	// refused is not counted.
	Begin(ctx context.Context, a LoginAttempt) (ThrottleVerdict, error)
	// Succeeded undoes the attempt's count after the password verified:
	// it clears the account's consecutive failures and remembers the
	// source as familiar.
	Succeeded(ctx context.Context, a LoginAttempt) error
	// Cancel undoes the attempt's count when the attempt could not be
	// decided (a store was down), so that an outage does not lock anyone.
	Cancel(ctx context.Context, a LoginAttempt) error
	// Locked reports whether the account takes no attempts from any
	// source: it reached the ceiling of consecutive failures.
	Locked(ctx context.Context, account Email) (bool, error)
	// Unlock clears the account's failures and locks, for an operator or
	// after the owner proved control of the address.
	Unlock(ctx context.Context, account Email) error
}

// RateLimiter limits how often a source may do something cheap to ask for
// and costly to serve, such as registering accounts.
type RateLimiter interface {
	// Allow counts one more request from source and returns zero if it
	// may go on, or how long to wait when the source is over its limit.
	// It returns CodeUnavailable when its store is down.
	Allow(ctx context.Context, source string) (time.Duration, error)
}
