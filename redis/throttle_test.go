package redis_test

import (
	"context"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/redis"
	"github.com/authworker/authworker/testenv"
)

// newThrottle returns a throttle on the shared Redis under a key prefix of
// the test's own.
func newThrottle(t *testing.T, cfg redis.ThrottleConfig) *redis.LoginThrottle {
	t.Helper()
	ctx := context.Background()
	client, err := redis.Open(ctx, redis.Config{URL: testenv.RedisURL(t), KeyPrefix: testenv.Name(t, "throttle") + ":"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	th, err := redis.NewLoginThrottle(client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return th
}

func fail(t *testing.T, th *redis.LoginThrottle, a domain.LoginAttempt, n int) {
	t.Helper()
	for range n {
		if err := th.Failed(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
}

func check(t *testing.T, th *redis.LoginThrottle, a domain.LoginAttempt) domain.ThrottleVerdict {
	t.Helper()
	v, err := th.Check(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestThrottleLocksAccount(t *testing.T) {
	th := newThrottle(t, redis.ThrottleConfig{LockAfter: 3, LockFor: time.Minute})
	ada := domain.LoginAttempt{Account: "ada@example.com", Source: "192.0.2.1"}
	bob := domain.LoginAttempt{Account: "bob@example.com", Source: "192.0.2.1"}

	fail(t, th, ada, 2)
	if v := check(t, th, ada); v.AccountLocked {
		t.Fatal("locked after 2 failures, want unlocked until 3")
	}
	fail(t, th, ada, 1)
	if v := check(t, th, ada); !v.AccountLocked {
		t.Fatal("unlocked after 3 failures, want locked")
	}
	if v := check(t, th, bob); v.AccountLocked {
		t.Error("another account is locked too, want only the failing one")
	}
}

func TestThrottleSuccessClearsAccount(t *testing.T) {
	th := newThrottle(t, redis.ThrottleConfig{LockAfter: 3})
	ada := domain.LoginAttempt{Account: "ada@example.com"}
	fail(t, th, ada, 2)
	if err := th.Succeeded(context.Background(), ada); err != nil {
		t.Fatal(err)
	}
	fail(t, th, ada, 2)
	if v := check(t, th, ada); v.AccountLocked {
		t.Error("locked after success and 2 more failures, want count restarted")
	}
}

func TestThrottleLockExpires(t *testing.T) {
	th := newThrottle(t, redis.ThrottleConfig{LockAfter: 1, LockFor: 50 * time.Millisecond, MaxLock: time.Second, Memory: time.Minute})
	ada := domain.LoginAttempt{Account: "ada@example.com"}
	fail(t, th, ada, 1)
	if v := check(t, th, ada); !v.AccountLocked {
		t.Fatal("not locked after failure")
	}
	waitUntil(t, 2*time.Second, func() bool { return !check(t, th, ada).AccountLocked })

	// The count is remembered: the next failure locks for twice as long.
	fail(t, th, ada, 1)
	time.Sleep(60 * time.Millisecond)
	if v := check(t, th, ada); !v.AccountLocked {
		t.Error("second lock ended after the first lock's duration, want it doubled")
	}
}

func TestThrottleHardLock(t *testing.T) {
	th := newThrottle(t, redis.ThrottleConfig{LockAfter: 2, LockFor: time.Millisecond, MaxLock: 2 * time.Millisecond, HardLockAfter: 5, Memory: time.Minute})
	ada := domain.LoginAttempt{Account: "ada@example.com"}
	fail(t, th, ada, 5)
	time.Sleep(20 * time.Millisecond) // longer than any progressive lock
	if v := check(t, th, ada); !v.AccountLocked {
		t.Error("unlocked after hard-lock-after failures, want locked for the memory period")
	}
}

func TestThrottleLimitsSource(t *testing.T) {
	th := newThrottle(t, redis.ThrottleConfig{SourceLimit: 3, SourceWindow: time.Minute})
	src := "198.51.100.7"
	for i, acct := range []domain.Email{"a@example.com", "b@example.com", "c@example.com"} {
		if v := check(t, th, domain.LoginAttempt{Account: acct, Source: src}); v.SourceRetryAfter != 0 {
			t.Fatalf("source limited after %d failures, want 3", i)
		}
		fail(t, th, domain.LoginAttempt{Account: acct, Source: src}, 1)
	}
	v := check(t, th, domain.LoginAttempt{Account: "d@example.com", Source: src})
	if v.SourceRetryAfter <= 0 || v.SourceRetryAfter > time.Minute {
		t.Errorf("SourceRetryAfter = %v, want within (0, 1m]", v.SourceRetryAfter)
	}
	if v.AccountLocked {
		t.Error("fresh account locked by a source limit, want only the source refused")
	}
	if v := check(t, th, domain.LoginAttempt{Account: "d@example.com", Source: "198.51.100.8"}); v.SourceRetryAfter != 0 {
		t.Error("another source is limited too")
	}
}

func TestThrottleFailsClosed(t *testing.T) {
	ctx := context.Background()
	client, err := redis.Open(ctx, redis.Config{URL: testenv.RedisURL(t), KeyPrefix: testenv.Name(t, "throttle") + ":"})
	if err != nil {
		t.Fatal(err)
	}
	th, err := redis.NewLoginThrottle(client, redis.ThrottleConfig{})
	if err != nil {
		t.Fatal(err)
	}
	client.Close()
	a := domain.LoginAttempt{Account: "ada@example.com", Source: "192.0.2.1"}
	if _, err := th.Check(ctx, a); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Check on a closed client: %v, want unavailable", err)
	}
	if err := th.Failed(ctx, a); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Failed on a closed client: %v, want unavailable", err)
	}
	if err := th.Succeeded(ctx, a); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Succeeded on a closed client: %v, want unavailable", err)
	}
}

func TestOpenUnreachable(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err := redis.Open(ctx, redis.Config{URL: "redis://127.0.0.1:1/0", Timeout: 200 * time.Millisecond})
	if domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Open on a closed port: %v, want unavailable", err)
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  redis.ThrottleConfig
	}{
		{"HardLockOver100", redis.ThrottleConfig{HardLockAfter: 101}},
		{"HardLockBelowLock", redis.ThrottleConfig{LockAfter: 10, HardLockAfter: 5}},
		{"MaxLockBelowFirst", redis.ThrottleConfig{LockFor: time.Hour, MaxLock: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := redis.NewLoginThrottle(nil, tt.cfg); err == nil {
				t.Error("NewLoginThrottle succeeded, want a config error")
			}
		})
	}
	if _, err := redis.Open(context.Background(), redis.Config{URL: "http://x"}); err == nil {
		t.Error("Open with a non-redis URL succeeded, want error")
	}
}

func waitUntil(t *testing.T, limit time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v", limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}
