package main

import (
	"context"
	"encoding/base64"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/passwords"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// TestHashPoolFitsTheWorkers: what the settings leave to default is sized
// so that requests that hash, running or waiting, leave a handler free for
// cheap requests; explicit settings are taken as given.
func TestHashPoolFitsTheWorkers(t *testing.T) {
	cpus := passwords.DefaultSlots()
	tests := []struct {
		name      string
		env       []string
		wantSlots int
		wantQueue int
	}{
		{"Defaults", []string{"AUTH_WORKERS=128"}, cpus, passwords.DefaultQueuePerSlot * cpus},
		{"QueueFittedToTheDefaultWorkers", nil, cpus, min(passwords.DefaultQueuePerSlot*cpus, 32-1-cpus)},
		{"QueueFitted", []string{"AUTH_WORKERS=4", "AUTH_HASH_SLOTS=1"}, 1, 2},
		{"SlotsFitted", []string{"AUTH_WORKERS=2"}, 1, passwords.NoQueue},
		{"OneWorker", []string{"AUTH_WORKERS=1"}, 1, passwords.NoQueue},
		{"Explicit", []string{"AUTH_WORKERS=64", "AUTH_HASH_SLOTS=3", "AUTH_HASH_QUEUE=10"}, 3, 10},
		{"NoQueue", []string{"AUTH_WORKERS=64", "AUTH_HASH_SLOTS=3", "AUTH_HASH_QUEUE=0"}, 3, passwords.NoQueue},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append([]string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32))}, tt.env...)
			cfg, err := LoadConfig(env)
			if err != nil {
				t.Fatal(err)
			}
			if got := cfg.HashPool; got.Slots != tt.wantSlots || got.Queue != tt.wantQueue {
				t.Errorf("slots %d, queue %d; want %d, %d", got.Slots, got.Queue, tt.wantSlots, tt.wantQueue)
			}
			if cfg.HashPool.MaxWait != passwords.DefaultMaxWait {
				t.Errorf("max wait %v, want the default %v", cfg.HashPool.MaxWait, passwords.DefaultMaxWait)
			}
		})
	}
	cfg, err := LoadConfig([]string{"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)), "AUTH_HASH_MAX_WAIT=500ms"})
	if err != nil || cfg.HashPool.MaxWait != 500*time.Millisecond {
		t.Errorf("AUTH_HASH_MAX_WAIT=500ms gives %v, %v", cfg.HashPool.MaxWait, err)
	}
}

// TestOverloadShedsLoginsAndServesIntrospect: with one hash slot, a burst
// of logins through the real worker, half of them with short deadlines (far
// more hashing than fits before them). Some are refused, RATE_LIMITED with
// a retryAfterMs or DEADLINE_EXCEEDED, without hashing; every reply comes;
// and an Introspect sent while one login hashes and another waits for the
// slot is answered before the burst's last login reply: it never waits
// behind the hashes.
func TestOverloadShedsLoginsAndServesIntrospect(t *testing.T) {
	const logins = 16
	// 64 MiB makes a hash cost some 100 ms here, so the burst holds well
	// over a second of hashing for one slot, against deadlines of 400 ms.
	// The default handlers (32) let every login reach the hash pool at once
	// and leave the rest to cheap requests.
	w := startWorker(t, "AUTH_WORKERS=32", "AUTH_HASH_SLOTS=1", "AUTH_HASH_QUEUE=6", "AUTH_ARGON2_MEMORY_KIB=65536")
	c := w.client(t)
	ctx := context.Background()
	owner := testenv.Unique("owner") + "@example.com"
	if _, err := c.Register(ctx, owner, password); err != nil {
		t.Fatal(err)
	}
	session, err := c.Login(ctx, owner, password)
	if err != nil {
		t.Fatal(err)
	}
	emails := make([]string, 0, logins)
	for len(emails) < logins {
		email := testenv.Unique("burst") + "@example.com"
		if _, err := c.Register(ctx, email, password); err != nil {
			t.Fatalf("register %s: %v", email, err)
		}
		emails = append(emails, email)
	}
	before := w.main.hashes.Stats()

	// Each reply takes the next sequence number when it arrives.
	var mu sync.Mutex
	seq := 0
	arrived := func() int {
		mu.Lock()
		defer mu.Unlock()
		seq++
		return seq
	}
	codes := make([]domain.Code, logins)
	retryAfter := make([]time.Duration, logins)
	loginSeq := make([]int, logins)
	var wg sync.WaitGroup
	for i := range logins {
		wg.Go(func() {
			deadline := 400 * time.Millisecond
			if i%2 == 1 {
				deadline = 10 * time.Second // waits its turn, and keeps the slot busy
			}
			_, err := c.Login(ctx, emails[i], password, withDeadline(deadline))
			loginSeq[i] = arrived()
			codes[i] = domain.ErrorCode(err)
			if e, ok := errors.AsType[*domain.Error](err); ok {
				retryAfter[i] = e.RetryAfter
			}
		})
	}
	waitUntil(t, "a login hashing and three waiting", func() bool {
		s := w.main.hashes.Stats()
		return s.Busy == 1 && s.Queued >= 3
	})
	res, err := c.Introspect(ctx, session.AccessToken, "access_token")
	introspectSeq := arrived()
	wg.Wait()

	if err != nil || !res.Active {
		t.Fatalf("introspect during the burst = %+v, %v; want an active token", res, err)
	}
	last := 0
	counts := map[domain.Code]int{}
	for i := range logins {
		last = max(last, loginSeq[i])
		counts[codes[i]]++
		switch codes[i] {
		case "", domain.CodeDeadlineExceeded:
		case domain.CodeRateLimited:
			if retryAfter[i] <= 0 {
				t.Errorf("login %d: RATE_LIMITED without retryAfterMs", i)
			}
		default:
			t.Errorf("login %d: code %q, want OK, RATE_LIMITED or DEADLINE_EXCEEDED", i, codes[i])
		}
	}
	t.Logf("login replies by code: %v; introspect reply arrived %d of %d", counts, introspectSeq, logins+1)
	if counts[domain.CodeRateLimited]+counts[domain.CodeDeadlineExceeded] == 0 {
		t.Errorf("no login was refused: %v", counts)
	}
	if introspectSeq > last {
		t.Errorf("introspect reply arrived after every login reply (%d of %d): it waited behind the hashes", introspectSeq, logins+1)
	}
	s := w.main.hashes.Stats()
	shed := func(c passwords.ShedCounts) uint64 {
		return c.TooLate + c.QueueFull + c.Overloaded + c.WaitExpired + c.Abandoned
	}
	if shed(s.Shed) == shed(before.Shed) {
		t.Errorf("pool admitted %d and shed none during the burst", s.Admitted-before.Admitted)
	}
	if s.Busy != 0 || s.Queued != 0 {
		t.Errorf("after the burst %d busy, %d queued; want none", s.Busy, s.Queued)
	}
}

// withDeadline gives a request a deadline of its own, d from now, while
// the client keeps waiting for its reply.
func withDeadline(d time.Duration) client.RequestOption {
	return func(r *schemas.Request) {
		deadline := time.Now().Add(d)
		r.Deadline = &deadline
	}
}

// waitUntil polls cond until it holds: it waits for the worker to reach a
// state, not for time to pass.
func waitUntil(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for i := 0; !cond(); i++ {
		if i > 20000 {
			tb.Fatalf("never reached: %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
