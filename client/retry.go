package client

import (
	"context"
	"errors"
	"time"

	"github.com/authworker/authworker/domain"
)

// Bounds of the wait RetryRateLimited takes between attempts.
const (
	minRetryWait = 10 * time.Millisecond
	maxRetryWait = 5 * time.Second
)

// RetryRateLimited calls fn until it returns anything but RATE_LIMITED,
// waiting between attempts for the reply's retry-after (at least 10 ms, at
// most 5 s), as a well-behaved caller does when the worker's hash slots are
// all taken; or until ctx ends, returning the last refusal then. A
// RATE_LIMITED reply is not stored, so fn may reuse its request id.
func RetryRateLimited(ctx context.Context, fn func() error) error {
	for {
		err := fn()
		var de *domain.Error
		if !errors.As(err, &de) || de.Code != domain.CodeRateLimited {
			return err
		}
		t := time.NewTimer(min(max(de.RetryAfter, minRetryWait), maxRetryWait))
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}
