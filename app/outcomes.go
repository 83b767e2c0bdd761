package app

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"time"

	"github.com/authworker/authworker/domain"
)

// Backoff between attempts of a database step while the database is
// unavailable.
const (
	firstBackoff = 100 * time.Millisecond
	maxBackoff   = 2 * time.Second
)

// errReused answers a request whose client id and request id were used
// before for a request that asked something else. It is not stored: the
// outcome under that key stays the first request's.
var errReused = &domain.Error{Code: domain.CodeConflict, Field: "requestId", Message: "requestId was already used for a different request"}

// errRaced means another delivery of the request stored its outcome first.
var errRaced = errors.New("outcome stored by another delivery")

// retry runs step, which touches the database only, until it succeeds,
// fails for a reason other than an unavailable store, or c's retry window
// would end during the next backoff. It returns step's last error. The
// first failure has the database's health checked, so that new requests
// are refused at once while it is down; a request whose use case has not
// started yet is then refused too, having nothing to keep, while one whose
// use case ran (a password hashed, say) keeps retrying its writes within
// its window.
func (s *Service) retry(ctx context.Context, c *call, what string, step func() error) error {
	backoff := firstBackoff
	for {
		err := step()
		if err == nil || domain.ErrorCode(err) != domain.CodeUnavailable || ctx.Err() != nil ||
			s.cfg.Now().Add(backoff).After(c.until) {
			return err
		}
		s.suspect(needsPostgres)
		if !c.running && s.closed(needsPostgres) != nil {
			return err
		}
		s.cfg.Logger.Warn("store unavailable, retrying", "step", what, "request_id", c.req.RequestID, "backoff", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// replay returns the stored reply of c's request, if there is one.
func (s *Service) replay(ctx context.Context, c *call) (Reply, bool, error) {
	var stored domain.Outcome
	err := s.retry(ctx, c, "load outcome", func() (err error) {
		stored, err = s.outcomes.Outcome(ctx, c.key, s.cfg.Now())
		return err
	})
	if domain.ErrorCode(err) == domain.CodeNotFound {
		return Reply{}, false, nil
	}
	if err != nil {
		return Reply{}, false, err
	}
	if subtle.ConstantTimeCompare(stored.RequestDigest, c.digest) != 1 {
		return Reply{}, false, errReused
	}
	value, err := s.sealer.Open(stored.Reply, c.ad)
	if err != nil {
		return Reply{}, false, fmt.Errorf("open stored reply: %w", err)
	}
	return Reply{Value: value, Code: stored.Code, Replayed: true}, true, nil
}

// replayRaced returns the reply another delivery stored.
func (s *Service) replayRaced(ctx context.Context, c *call) (Reply, error) {
	rep, found, err := s.replay(ctx, c)
	if err == nil && !found {
		err = domain.Errorf(domain.CodeInternal, "outcome stored by another delivery is gone")
	}
	return rep, err
}

// save stores rep as c's outcome, in the transaction ctx carries if any. It
// returns errRaced when an outcome is stored already.
func (s *Service) save(ctx context.Context, c *call, rep Reply) error {
	now := s.cfg.Now()
	err := s.outcomes.SaveOutcome(ctx, domain.Outcome{
		Key:           c.key,
		Code:          rep.Code,
		RequestDigest: c.digest,
		Reply:         s.sealer.Seal(rep.Value, c.ad),
		CreatedAt:     now,
		ExpiresAt:     now.Add(s.cfg.OutcomeTTL),
	})
	if domain.ErrorCode(err) == domain.CodeConflict {
		return errRaced
	}
	return err
}

// committed translates the error of a transaction that stores an outcome:
// an outcome another delivery stored first is errRaced, whether SaveOutcome
// found it at once or the commit did (an adapter may send the write with
// the commit). Nothing else in such a transaction fails with CodeConflict:
// a use case's conflicts are final, stored as its outcome.
func committed(err error) error {
	if domain.ErrorCode(err) == domain.CodeConflict {
		return errRaced
	}
	return err
}

// store stores rep as c's outcome outside any unit of work (the use case
// wrote nothing), with the events the use case recorded, and returns it; or, when another delivery stored one
// first, that one.
func (s *Service) store(ctx context.Context, c *call, rep Reply) (Reply, error) {
	err := s.retry(ctx, c, "store outcome", func() error {
		if !c.pending() {
			return s.save(ctx, c, rep)
		}
		return committed(s.tx.InTx(ctx, func(ctx context.Context) error {
			if err := s.publish(ctx, c); err != nil {
				return err
			}
			return s.save(ctx, c, rep)
		}))
	})
	if errors.Is(err, errRaced) {
		c.events = c.events[:c.published] // the delivery that stored the outcome published its own
		return s.replayRaced(ctx, c)
	}
	if err == nil {
		c.published = len(c.events)
	}
	return rep, err
}
