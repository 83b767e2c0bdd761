package app

import (
	"context"
	"errors"

	"github.com/authworker/authworker/handlers"
)

// errAnswered is what a use case's unit of work returns when another
// delivery of the request stored its outcome first; the use case returns it
// and Answer replies with the stored outcome.
var errAnswered = errors.New("request answered by another delivery")

// unitOfWork implements handlers.UnitOfWork: it commits a use case's writes
// with the request's outcome, and retries the transaction, and only the
// transaction, while the database is unavailable.
type unitOfWork struct {
	s *Service
}

var _ handlers.UnitOfWork = unitOfWork{}

// Atomically implements handlers.UnitOfWork: fn's writes, the events
// recorded so far and the request's outcome commit in one transaction.
// Outside a request (ctx carries no call) it is a plain transaction.
func (u unitOfWork) Atomically(ctx context.Context, fn func(ctx context.Context) (any, error)) (any, error) {
	c := callOf(ctx)
	if c == nil {
		var result any
		err := u.s.tx.InTx(ctx, func(ctx context.Context) (err error) {
			result, err = fn(ctx)
			return err
		})
		return result, err
	}
	var (
		result any
		failed error // fn's final error, committed as the outcome
		rep    Reply
		mark   = len(c.events) // events recorded before the unit of work
	)
	err := u.s.retry(ctx, c, "unit of work", func() error {
		return committed(u.s.tx.InTx(ctx, func(ctx context.Context) error {
			c.events = c.events[:mark] // a retried attempt records its events again
			result, failed = fn(ctx)
			if failed != nil && !final(failed) {
				return failed
			}
			if err := u.s.publish(ctx, c); err != nil {
				return err
			}
			if !c.op.stored() {
				return nil
			}
			rep = u.s.reply(c, result, failed)
			return u.s.save(ctx, c, rep)
		}))
	})
	if err != nil {
		c.events = c.events[:mark] // they report changes that rolled back
	}
	switch {
	case errors.Is(err, errRaced):
		c.events = c.events[:c.published]
		raced, err := u.s.replayRaced(ctx, c)
		if err != nil {
			return nil, err
		}
		c.answered = &raced
		return nil, errAnswered
	case err != nil:
		return nil, err
	}
	c.published = len(c.events)
	if c.op.stored() {
		c.answered = &rep
	}
	return result, failed
}
