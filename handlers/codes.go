package handlers

import (
	"context"
	"io"
	"log/slog"
	"time"

	"github.com/authworker/authworker/domain"
)

// DefaultCodeFloor is the default least time the use cases of one-time
// codes take to answer: above a unit of work that saves a code and records
// its notification, or counts a wrong code, on a slow database.
const DefaultCodeFloor = 250 * time.Millisecond

// CodeRequestDeps are the collaborators of the use cases that send one-time
// codes: RequestPasswordResetHandler and RequestEmailVerificationHandler.
type CodeRequestDeps struct {
	Work     UnitOfWork
	Users    domain.UserRepository
	Codes    domain.CodeRepository
	Notifier domain.Notifier
	Events   domain.Events
	// Limiter limits requests per source (Client.Source).
	Limiter domain.RateLimiter
	// AccountLimiter limits requests per account, keyed "account:" and the
	// normalised address, whether or not it has an account: so that nobody
	// can flood an owner's mailbox from many sources.
	AccountLimiter domain.RateLimiter
	NewID          IDGenerator
	Now            Clock
	Random         io.Reader // the source of codes: crypto/rand in production
	// Sleep waits for d or until ctx ends; default a timer. Tests record
	// instead of waiting.
	Sleep  func(ctx context.Context, d time.Duration)
	Logger *slog.Logger
}

func (d *CodeRequestDeps) setDefaults() {
	if d.Sleep == nil {
		d.Sleep = sleep
	}
	if d.Logger == nil {
		d.Logger = slog.New(slog.DiscardHandler)
	}
}

// codeSender sends one-time codes of one purpose: what the use cases that
// send codes share.
type codeSender struct {
	deps    CodeRequestDeps
	purpose domain.CodePurpose
	kind    domain.NotificationKind
	// sent is the event that reports a code sent.
	sent  domain.EventPayload
	ttl   time.Duration
	floor time.Duration
	// wants reports whether the user is to get a code: a user who is not
	// gets none, and the caller the same reply.
	wants func(*domain.User) bool
}

// handle answers a request for a code to the owner of address. The reply
// is Done whether or not a code went out, no sooner than floor after handle
// began. Only the refusals that depend on nothing but the request and its
// source answer at once: CodeInvalid for a malformed address and
// CodeRateLimited for a source over its limit. A store that is down gives
// CodeUnavailable.
func (s codeSender) handle(ctx context.Context, address string, client domain.Client) (Done, error) {
	start := s.deps.Now()
	email, err := domain.ParseEmail(address)
	if err != nil {
		return Done{}, err
	}
	wait, err := s.deps.Limiter.Allow(ctx, client.Source())
	if err != nil {
		return Done{}, err
	}
	if wait > 0 {
		return Done{}, &domain.Error{Code: domain.CodeRateLimited, Message: "too many code requests from this source", RetryAfter: wait}
	}
	sent, err := s.send(ctx, email, client)
	if err != nil {
		return Done{}, err
	}
	if !sent {
		// A unit of work all the same, which stores the reply, as sending
		// a code does: then whether one was sent does not show in when the
		// reply comes.
		if _, err := Commit(ctx, s.deps.Work, func(context.Context) (Done, error) { return Done{}, nil }); err != nil {
			return Done{}, err
		}
	}
	holdUntil(ctx, s.deps.Now, s.deps.Sleep, start, s.floor)
	return Done{}, nil
}

// send sends a code to the owner of email, unless the address has no
// account that wants one or has been asked for too many codes. It reports
// whether it ran a unit of work.
func (s codeSender) send(ctx context.Context, email domain.Email, client domain.Client) (bool, error) {
	wait, err := s.deps.AccountLimiter.Allow(ctx, "account:"+email.String())
	if err != nil {
		return false, err
	}
	if wait > 0 {
		s.deps.Logger.Info("code not sent: too many requests for the address", "purpose", s.purpose)
		return false, nil
	}
	user, err := s.deps.Users.UserByEmail(ctx, email)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !s.wants(user) {
		return false, nil
	}
	now := s.deps.Now()
	code, stored, err := domain.NewOneTimeCode(s.deps.Random, user.ID(), s.purpose, now, s.ttl)
	if err != nil {
		return false, err
	}
	n := domain.Notification{
		ID: s.deps.NewID(), Kind: s.kind, UserID: user.ID(), Email: user.Email(), ClientID: client.ID,
		Code: code, ExpiresAt: stored.ExpiresAt, OccurredAt: now,
	}
	_, err = Commit(ctx, s.deps.Work, func(ctx context.Context) (Done, error) {
		err := s.deps.Codes.SaveCode(ctx, stored)
		if domain.ErrorCode(err) == domain.CodeNotFound {
			return Done{}, nil // erased since it was read: nobody to send to
		}
		if err != nil {
			return Done{}, err
		}
		s.deps.Events.Record(ctx, domain.Event{UserID: user.ID(), OccurredAt: now, Payload: s.sent})
		return Done{}, s.deps.Notifier.Notify(ctx, n)
	})
	return true, err
}

// holdUntil waits until floor has passed since start, so that every path
// that reaches it answers after the same time.
func holdUntil(ctx context.Context, now Clock, sleep func(context.Context, time.Duration), start time.Time, floor time.Duration) {
	if wait := floor - now().Sub(start); wait > 0 {
		sleep(ctx, wait)
	}
}

// errInvalidCode is the one reply to every code that proves nothing: for
// an unknown address or an inactive account, no code, a wrong, expired or
// void one, or one used by another request meanwhile. So the reply never
// tells whether an account exists or has a code.
func errInvalidCode() error {
	return domain.Errorf(domain.CodeUnauthorized, "invalid or expired code")
}

// codeChecker checks one-time codes of one purpose: what the use cases that
// take codes share.
type codeChecker struct {
	work    UnitOfWork
	users   domain.UserRepository
	codes   domain.CodeRepository
	purpose domain.CodePurpose
	now     Clock
	sleep   func(context.Context, time.Duration)
	floor   time.Duration
}

// check returns the active user with the address whose code is code and
// valid at now. For every other case it returns errInvalidCode from a unit
// of work, having counted a wrong code in it (the refusal commits with the
// count), so that the code is void after MaxCodeAttempts; then the use case
// may call no other unit of work. A store that is down gives
// CodeUnavailable.
//
// check only reads the code: the use case consumes it in its own unit of
// work, with consume, which decides between concurrent uses.
func (c codeChecker) check(ctx context.Context, email domain.Email, code string, now time.Time) (*domain.User, error) {
	user, err := c.users.UserByEmail(ctx, email)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return nil, c.refused(ctx)
	}
	if err != nil {
		return nil, err
	}
	if !user.CanLogIn() {
		return nil, c.refused(ctx)
	}
	stored, err := c.codes.Code(ctx, user.ID(), c.purpose)
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return nil, c.refused(ctx)
	}
	if err != nil {
		return nil, err
	}
	if stored.Matches(code, now) {
		return user, nil
	}
	_, err = Commit(ctx, c.work, func(ctx context.Context) (Done, error) {
		if err := c.codes.CountFailedAttempt(ctx, user.ID(), c.purpose); err != nil {
			return Done{}, err
		}
		return Done{}, errInvalidCode()
	})
	return nil, err
}

// refused refuses a code that nothing counts against (no account, no
// code) in a unit of work all the same, which stores the reply, as a wrong
// code's count does: so when the reply comes does not tell whether the
// address has an account, or a code.
func (c codeChecker) refused(ctx context.Context) error {
	_, err := Commit(ctx, c.work, func(context.Context) (Done, error) { return Done{}, errInvalidCode() })
	return err
}

// consume uses the user's code, inside a unit of work. It returns
// errInvalidCode when the code is no longer there to use: another request
// used it, or it expired, since check.
func (c codeChecker) consume(ctx context.Context, user domain.UserID, code string, now time.Time) error {
	ok, err := c.codes.ConsumeCode(ctx, user, c.purpose, domain.HashCode(code), now)
	if err != nil {
		return err
	}
	if !ok {
		return errInvalidCode()
	}
	return nil
}

// refuse returns err, once floor has passed since start when err refuses
// the code, so that every refusal takes the same time whatever the account
// and its code.
func (c codeChecker) refuse(ctx context.Context, start time.Time, err error) error {
	if domain.ErrorCode(err) == domain.CodeUnauthorized {
		holdUntil(ctx, c.now, c.sleep, start, c.floor)
	}
	return err
}
