package redis_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/redis"
)

// fakeSource is the durable record of revocations.
type fakeSource struct {
	mu    sync.Mutex
	ids   []domain.SessionID
	calls int
	err   error
}

func (s *fakeSource) RevokedSince(context.Context, time.Time) ([]domain.SessionID, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls++
	return slices.Clone(s.ids), s.err
}

func newRevocations(t *testing.T, e *env, src *fakeSource) *redis.RevocationList {
	t.Helper()
	l, err := redis.NewRevocationList(e.client, redis.RevocationConfig{Hold: time.Minute, Source: src})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func revoked(t *testing.T, l *redis.RevocationList, id domain.SessionID) bool {
	t.Helper()
	r, err := l.Revoked(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestRevocationList(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{})
	src := &fakeSource{ids: []domain.SessionID{"durable-only"}}
	l := newRevocations(t, e, src)

	t.Run("EmptyListIsRebuiltFromTheSource", func(t *testing.T) {
		if !revoked(t, l, "durable-only") {
			t.Error("a durable revocation missing from a fresh list")
		}
		if src.calls != 1 {
			t.Errorf("source read %d times, want once", src.calls)
		}
	})
	t.Run("RevokedAtOnce", func(t *testing.T) {
		if revoked(t, l, "s1") {
			t.Fatal("s1 revoked before Revoke")
		}
		if err := l.Revoke(context.Background(), "s1", "s2"); err != nil {
			t.Fatal(err)
		}
		if !revoked(t, l, "s1") || !revoked(t, l, "s2") {
			t.Error("a revoked session is not listed")
		}
		if src.calls != 1 {
			t.Errorf("a complete list read the source again (%d reads)", src.calls)
		}
	})
	t.Run("ListedForTheHold", func(t *testing.T) {
		ttl, err := e.raw.PTTL(context.Background(), e.prefix+"revoked:s1").Result()
		if err != nil || ttl <= 0 || ttl > time.Minute {
			t.Errorf("TTL %v (%v), want within (0, 1m]", ttl, err)
		}
	})
	t.Run("FlushedListIsRebuilt", func(t *testing.T) {
		keys, _ := e.raw.Keys(context.Background(), e.prefix+"revoked:*").Result()
		e.raw.Del(context.Background(), keys...)
		src.mu.Lock()
		src.ids = append(src.ids, "s1")
		src.mu.Unlock()
		if !revoked(t, l, "s1") {
			t.Error("a revocation lost with Redis's data is not listed after the rebuild")
		}
	})
	t.Run("FailsClosedWhenTheSourceIsDownToo", func(t *testing.T) {
		keys, _ := e.raw.Keys(context.Background(), e.prefix+"revoked:*").Result()
		e.raw.Del(context.Background(), keys...)
		src.mu.Lock()
		src.err = domain.Unavailable("session store", context.DeadlineExceeded)
		src.mu.Unlock()
		if _, err := l.Revoked(context.Background(), "s9"); domain.ErrorCode(err) != domain.CodeUnavailable {
			t.Errorf("Revoked with an empty list and the source down: %v, want unavailable", err)
		}
	})
}

func TestRevocationListFailsClosed(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{})
	l := newRevocations(t, e, &fakeSource{})
	e.client.Close()
	if _, err := l.Revoked(context.Background(), "s1"); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Revoked with Redis closed: %v, want unavailable", err)
	}
	if err := l.Revoke(context.Background(), "s1"); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Revoke with Redis closed: %v, want unavailable", err)
	}
}

// TestRevocationSyncRepairs: a revocation whose write to Redis failed is
// listed after the next sync.
func TestRevocationSyncRepairs(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{})
	src := &fakeSource{}
	l, err := redis.NewRevocationList(e.client, redis.RevocationConfig{Hold: time.Minute, Source: src, SyncInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if revoked(t, l, "late") {
		t.Fatal("listed before it was revoked")
	}
	src.mu.Lock()
	src.ids = []domain.SessionID{"late"} // committed, but never written to Redis
	src.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { l.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	waitUntil(t, 5*time.Second, func() bool { return revoked(t, l, "late") })
}
