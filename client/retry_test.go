package client_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
)

func TestRetryRateLimited(t *testing.T) {
	limited := &domain.Error{Code: domain.CodeRateLimited, RetryAfter: time.Millisecond}
	other := errors.New("unauthorized")
	tests := []struct {
		name    string
		replies []error
		want    error
		calls   int
	}{
		{"AdmittedAtOnce", []error{nil}, nil, 1},
		{"AdmittedAfterTwoRefusals", []error{limited, limited, nil}, nil, 3},
		{"OtherErrorsAreReturned", []error{limited, other}, other, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			calls := 0
			err := client.RetryRateLimited(context.Background(), func() error {
				calls++
				return tt.replies[calls-1]
			})
			if !errors.Is(err, tt.want) || calls != tt.calls {
				t.Errorf("err %v after %d calls, want %v after %d", err, calls, tt.want, tt.calls)
			}
		})
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := client.RetryRateLimited(ctx, func() error { return limited }); !errors.Is(err, limited) {
		t.Errorf("with ctx ended: %v, want the last refusal", err)
	}
}
