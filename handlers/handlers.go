// Package handlers holds the use cases of authworker, one per file: a
// command, a handler with explicit dependencies, and Handle. Handlers speak
// domain types and domain errors only: they know nothing of Kafka, Avro or
// the stores behind the ports. Package app runs them: it decodes requests
// into commands, replays stored outcomes, and maps results and error codes
// onto replies.
//
// A use case does its slow and external work first (validating, throttling,
// hashing, signing) and its writes last, in one call to Commit: so a
// transaction never waits for a password hash, and a unit of work that is
// retried because the database blinked repeats only the writes, never the
// hashing or a counter in Redis.
package handlers

import (
	"context"
	"time"

	"github.com/authworker/authworker/domain"
)

// Handler is a use case: it handles a command of type C and returns a
// result of type R or an error whose domain code says what went wrong.
type Handler[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// UnitOfWork makes a use case's writes atomic with the outcome of the
// request it answers.
type UnitOfWork interface {
	// Atomically runs fn in one transaction, together with storing the
	// request's outcome: fn's result, or its error when that error is
	// final (CodeInvalid, CodeUnauthorized, CodeConflict, CodeNotFound).
	// The writes fn made commit with a final error too, so a use case may
	// record, say, a revocation and refuse the request in one step. Any
	// other error rolls the transaction back.
	//
	// fn may run more than once: when the store fails, the transaction is
	// retried within the request's retry window. So fn must do nothing but
	// calls on the storage ports, and compute nothing it cannot compute
	// again. A use case calls Atomically at most once.
	//
	// Atomically returns fn's result and error; or, when another delivery
	// of the same request stored its outcome first, an error that tells
	// the caller the request is answered already. Return it as is.
	Atomically(ctx context.Context, fn func(ctx context.Context) (any, error)) (any, error)
}

// Commit runs fn through uow.Atomically with a typed result.
func Commit[R any](ctx context.Context, uow UnitOfWork, fn func(ctx context.Context) (R, error)) (R, error) {
	v, err := uow.Atomically(ctx, func(ctx context.Context) (any, error) { return fn(ctx) })
	r, _ := v.(R)
	return r, err
}

// refusedHashing reports whether err is a PasswordHasher's refusal to hash
// in time (or at all, its context cancelled): nothing was hashed or
// checked, so the use case answers with err and counts nothing.
func refusedHashing(err error) bool {
	switch domain.ErrorCode(err) {
	case domain.CodeRateLimited, domain.CodeDeadlineExceeded, domain.CodeUnavailable:
		return true
	}
	return false
}

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
