package passwords_test

import (
	"context"
	"syscall"
	"testing"

	"github.com/authworker/authworker/passwords"
)

// niceProbe is a hasher that reports the nice value of the thread it runs
// on.
type niceProbe struct{ nice chan int }

func (p niceProbe) probe() {
	// getpriority returns 20 - nice for a thread, to stay positive.
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil {
		p.nice <- -100
		return
	}
	p.nice <- 20 - prio
}

func (p niceProbe) Hash(string) (string, error)               { p.probe(); return "h", nil }
func (p niceProbe) Verify(string, string) (bool, bool, error) { p.probe(); return true, false, nil }
func (p niceProbe) VerifyDummy(string)                        { p.probe() }

// TestHashesRunAtLowerPriority: every kind of hash runs on a thread niced
// below the default, and the caller's thread keeps its priority.
func TestHashesRunAtLowerPriority(t *testing.T) {
	probe := niceProbe{nice: make(chan int, 1)}
	p := newPool(t, probe, passwords.PoolConfig{Slots: 2})
	ctx := context.Background()
	for name, call := range map[string]func(){
		"Hash":        func() { _, _ = p.Hash(ctx, "pw") },
		"Verify":      func() { _, _, _ = p.Verify(ctx, "pw", "h") },
		"VerifyDummy": func() { _ = p.VerifyDummy(ctx, "pw") },
		"HashIfIdle":  func() { _, _, _ = p.HashIfIdle(ctx, "pw") },
	} {
		call()
		if got := <-probe.nice; got != 10 {
			t.Errorf("%s ran at nice %d, want 10", name, got)
		}
	}
	prio, err := syscall.Getpriority(syscall.PRIO_PROCESS, syscall.Gettid())
	if err != nil || 20-prio != 0 {
		t.Errorf("the caller's thread is at nice %d (%v), want 0", 20-prio, err)
	}
}
