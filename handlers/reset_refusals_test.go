package handlers_test

import (
	"context"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
)

// TestResetRefusalsStoreTheirReplyAlike: every refused reset runs one unit
// of work (which stores the reply) before the floor, whether the address
// has an account with a pending code (the wrong code is counted in it),
// an account without one, or no account: otherwise the reply would come
// later when the app stores it after the wait, and tell which.
func TestResetRefusalsStoreTheirReplyAlike(t *testing.T) {
	const floor = 200 * time.Millisecond
	calls := map[string]int{}
	for _, email := range []string{"nobody@example.com", "vera@example.com", "ada@example.com"} {
		f := newCodesFixture(t)
		f.issueCode(t, adaID, domain.CodePasswordReset, codeTTL)
		deps := f.resetDeps()
		work := &steppingWork{clock: f.clock, takes: 40 * time.Millisecond}
		deps.Work = work
		_, err := handlers.NewResetPasswordHandler(deps, handlers.ResetPasswordConfig{Floor: floor}).
			Handle(context.Background(), resetWith(email, "wrong", newPassword))
		if domain.ErrorCode(err) != domain.CodeUnauthorized {
			t.Fatalf("%s: error = %v", email, err)
		}
		calls[email] = work.calls
	}
	if calls["nobody@example.com"] != calls["ada@example.com"] || calls["vera@example.com"] != calls["ada@example.com"] {
		t.Errorf("units of work before the floor: unknown address %d, account without code %d, account with a code %d; want equal",
			calls["nobody@example.com"], calls["vera@example.com"], calls["ada@example.com"])
	}
}
