package redis_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/redis"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/testenv"
)

// env is a throttle on the shared Redis under a key prefix of the test's
// own, and a plain client to look at the keys it writes.
type env struct {
	th     *redis.LoginThrottle
	raw    *goredis.Client
	prefix string
	client *redis.Client
}

func newEnv(t *testing.T, cfg redis.ThrottleConfig) *env {
	t.Helper()
	e := &env{prefix: testenv.Name(t, "throttle") + ":"}
	var err error
	e.client, err = redis.Open(context.Background(), redis.Config{URL: testenv.RedisURL(t), KeyPrefix: e.prefix})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.client.Close() })
	opts, err := goredis.ParseURL(testenv.RedisURL(t))
	if err != nil {
		t.Fatal(err)
	}
	e.raw = goredis.NewClient(opts)
	t.Cleanup(func() { e.raw.Close() })
	cfg.Digests = mac(t)
	e.th, err = redis.NewLoginThrottle(e.client, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func mac(t *testing.T) *seal.MAC {
	t.Helper()
	m, err := seal.NewMAC(bytes.Repeat([]byte{9}, seal.KeySize), "throttle")
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func attempt(account, source string) domain.LoginAttempt {
	return domain.LoginAttempt{Account: domain.Email(account), Source: source}
}

func (e *env) begin(t *testing.T, a domain.LoginAttempt) domain.ThrottleVerdict {
	t.Helper()
	v, err := e.th.Begin(context.Background(), a)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// fail makes n attempts that are let through and fail.
func (e *env) fail(t *testing.T, a domain.LoginAttempt, n int) {
	t.Helper()
	for i := range n {
		if v := e.begin(t, a); v.AccountLocked || v.SourceRetryAfter > 0 {
			t.Fatalf("attempt %d of %d refused: %+v", i+1, n, v)
		}
	}
}

func (e *env) succeed(t *testing.T, a domain.LoginAttempt) {
	t.Helper()
	if v := e.begin(t, a); v.AccountLocked || v.SourceRetryAfter > 0 {
		t.Fatalf("attempt refused: %+v", v)
	}
	if err := e.th.Succeeded(context.Background(), a); err != nil {
		t.Fatal(err)
	}
}

const owner = "ip:198.51.100.1" // where the owner logs in from

func unfamiliar(i int) string { return fmt.Sprintf("ip:203.0.113.%d", i) }

// TestOwnerNotLockedOutByStrangers: ten wrong passwords from ten addresses
// lock out unfamiliar sources, not the owner's usual address; one attempt
// each time the lock expires keeps strangers out, and the owner in.
func TestOwnerNotLockedOutByStrangers(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 10, LockFor: time.Minute})
	ada := "ada@example.com"
	e.succeed(t, attempt(ada, owner))
	for i := range 10 {
		e.fail(t, attempt(ada, unfamiliar(i)), 1)
	}
	tests := []struct {
		name       string
		source     string
		wantLocked bool
	}{
		{"OwnersAddress", owner, false},
		{"AStranger", unfamiliar(50), true},
		{"OneOfTheTen", unfamiliar(3), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := e.begin(t, attempt(ada, tt.source))
			if v.AccountLocked != tt.wantLocked {
				t.Errorf("locked = %v, want %v", v.AccountLocked, tt.wantLocked)
			}
			if tt.source == owner && !v.Familiar {
				t.Error("the owner's address is not familiar")
			}
			if !v.AccountLocked {
				_ = e.th.Cancel(context.Background(), attempt(ada, tt.source))
			}
		})
	}
}

func TestStrangersLockedProgressively(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 3, LockFor: 100 * time.Millisecond, MaxLock: time.Minute, Memory: time.Hour})
	ada := "ada@example.com"
	e.fail(t, attempt(ada, unfamiliar(1)), 2)
	v := e.begin(t, attempt(ada, unfamiliar(2)))
	if v.AccountLocked || v.LockedNow != domain.LockUnfamiliarSources {
		t.Fatalf("third failure: %+v, want let through and locking", v)
	}
	if v := e.begin(t, attempt(ada, unfamiliar(3))); !v.AccountLocked {
		t.Fatal("unfamiliar source let through after 3 failures")
	}
	waitUntil(t, 2*time.Second, func() bool { return !e.begin(t, attempt(ada, unfamiliar(4))).AccountLocked })
	// That attempt was let through and counted: the next lock is longer.
	if v := e.begin(t, attempt(ada, unfamiliar(5))); !v.AccountLocked {
		t.Error("let through right after a fourth failure, want locked again")
	}
}

// TestFamiliarSourceHasItsOwnCount: a familiar source that keeps failing is
// locked for itself, without locking the other familiar sources.
func TestFamiliarSourceHasItsOwnCount(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 3, LockFor: time.Minute})
	ada := "ada@example.com"
	home, office := owner, "ip:198.51.100.2"
	e.succeed(t, attempt(ada, home))
	e.succeed(t, attempt(ada, office))
	e.fail(t, attempt(ada, home), 3)
	if v := e.begin(t, attempt(ada, home)); !v.AccountLocked {
		t.Error("home let through after 3 failures from it")
	}
	if v := e.begin(t, attempt(ada, office)); v.AccountLocked {
		t.Error("office locked by failures from home")
	}
}

// TestLockedNowNamesTheScope: the failure that locks says which sources the
// lock keeps out, and failures below a limit lock nothing.
func TestLockedNowNamesTheScope(t *testing.T) {
	cfg := redis.ThrottleConfig{LockAfter: 3, LockFor: time.Minute, HardLockAfter: 5, FamiliarReserve: 1, Memory: time.Hour}
	tests := []struct {
		name string
		// before fails from these sources first, in order.
		before []string
		source string
		want   domain.LockScope
	}{
		{"first failure", nil, unfamiliar(1), ""},
		{"below the limit", []string{unfamiliar(1)}, unfamiliar(2), ""},
		{"third stranger", []string{unfamiliar(1), unfamiliar(2)}, unfamiliar(3), domain.LockUnfamiliarSources},
		{"owner's third", []string{owner, owner}, owner, domain.LockSource},
		{"ceiling", []string{unfamiliar(1), owner, owner, unfamiliar(2)}, "ip:198.51.100.9", domain.LockAll},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, cfg)
			ada := "ada@example.com"
			e.succeed(t, attempt(ada, owner))
			e.succeed(t, attempt(ada, "ip:198.51.100.9"))
			for _, src := range tt.before {
				e.fail(t, attempt(ada, src), 1)
			}
			if got := e.begin(t, attempt(ada, tt.source)).LockedNow; got != tt.want {
				t.Errorf("locked now = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNoMoreThanHardCapConsecutiveFailures: whatever the mix of sources,
// no account sees more than HardLockAfter consecutive failures; strangers
// stop FamiliarReserve short of it, and the owner's address gets the rest.
func TestNoMoreThanHardCapConsecutiveFailures(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 2, LockFor: time.Millisecond, MaxLock: time.Millisecond,
		HardLockAfter: 20, FamiliarReserve: 5, Memory: time.Hour})
	ada := "ada@example.com"
	e.succeed(t, attempt(ada, owner))
	allowed := 0
	for i := range 200 {
		if !e.begin(t, attempt(ada, unfamiliar(i))).AccountLocked {
			allowed++
		}
		time.Sleep(2 * time.Millisecond) // past every progressive lock
	}
	if allowed != 15 {
		t.Errorf("strangers got %d attempts, want 20-5 = 15", allowed)
	}
	ownerAllowed := 0
	for range 50 {
		if !e.begin(t, attempt(ada, owner)).AccountLocked {
			ownerAllowed++
		}
		time.Sleep(2 * time.Millisecond)
	}
	if allowed+ownerAllowed != 20 {
		t.Errorf("%d + %d consecutive failures allowed, want 20 in all", allowed, ownerAllowed)
	}
}

func TestSuccessClearsTheAccount(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 3, LockFor: time.Minute})
	ada := "ada@example.com"
	e.fail(t, attempt(ada, unfamiliar(1)), 2)
	e.succeed(t, attempt(ada, unfamiliar(1)))
	e.fail(t, attempt(ada, unfamiliar(2)), 2)
	if v := e.begin(t, attempt(ada, unfamiliar(3))); v.AccountLocked {
		t.Error("locked after a success and 2 more failures, want the count restarted")
	}
}

// TestConcurrentAttemptsCannotSlipPast: the check and the count are one
// step, so 24 attempts at once get exactly LockAfter through.
func TestConcurrentAttemptsCannotSlipPast(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 10, LockFor: time.Minute})
	var mu sync.Mutex
	through := 0
	var wg sync.WaitGroup
	for i := range 24 {
		wg.Go(func() {
			v, err := e.th.Begin(context.Background(), attempt("ada@example.com", unfamiliar(i)))
			if err != nil {
				t.Error(err)
				return
			}
			if !v.AccountLocked {
				mu.Lock()
				through++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if through != 10 {
		t.Errorf("%d of 24 concurrent attempts let through, want 10", through)
	}
}

func TestCancelUndoesTheCount(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 3, SourceLimit: 3, LockFor: time.Minute})
	a := attempt("ada@example.com", unfamiliar(1))
	for range 10 {
		e.begin(t, a)
		if err := e.th.Cancel(context.Background(), a); err != nil {
			t.Fatal(err)
		}
	}
	if v := e.begin(t, a); v.AccountLocked || v.SourceRetryAfter > 0 {
		t.Errorf("after ten cancelled attempts: %+v, want let through", v)
	}
}

func TestSourceLimit(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{SourceLimit: 3, ClientLimit: 5, SourceWindow: time.Minute})
	tests := []struct {
		name   string
		source string
		limit  int
	}{
		{"IPAddress", "ip:198.51.100.7", 3},
		{"CallingServiceWithoutAddresses", "client:web", 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for i := range tt.limit {
				if v := e.begin(t, attempt(fmt.Sprintf("u%d@example.com", i), tt.source)); v.SourceRetryAfter != 0 {
					t.Fatalf("source limited after %d attempts, want %d", i, tt.limit)
				}
			}
			v := e.begin(t, attempt("next@example.com", tt.source))
			if v.SourceRetryAfter <= 0 || v.SourceRetryAfter > time.Minute {
				t.Errorf("SourceRetryAfter = %v, want within (0, 1m]", v.SourceRetryAfter)
			}
			if v.AccountLocked {
				t.Error("fresh account locked by a source limit")
			}
		})
	}
	if v := e.begin(t, attempt("d@example.com", "ip:198.51.100.8")); v.SourceRetryAfter != 0 {
		t.Error("another source is limited too")
	}
}

// TestKeysNameNoAddress: Redis holds keyed digests, never an e-mail or IP
// address, nor a plain SHA-256 of one that a list of candidates reverses.
func TestKeysNameNoAddress(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{})
	email, ip := "ada.lovelace@example.com", "ip:198.51.100.77"
	e.succeed(t, attempt(email, ip))
	e.fail(t, attempt(email, ip), 1)
	keys, err := e.raw.Keys(context.Background(), e.prefix+"*").Result()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no keys written")
	}
	members, _ := e.raw.ZRange(context.Background(), keys[0], 0, -1).Result()
	for _, k := range append(keys, members...) {
		for _, secret := range []string{email, ip, "198.51.100.77"} {
			plain := sha256.Sum256([]byte(secret))
			if strings.Contains(k, secret) || strings.Contains(k, hex.EncodeToString(plain[:16])) {
				t.Errorf("key %q names %q", k, secret)
			}
		}
	}
}

func TestThrottleFailsClosed(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{})
	e.client.Close()
	ctx := context.Background()
	a := attempt("ada@example.com", owner)
	if _, err := e.th.Begin(ctx, a); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Begin on a closed client: %v, want unavailable", err)
	}
	if err := e.th.Succeeded(ctx, a); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Succeeded on a closed client: %v, want unavailable", err)
	}
	if err := e.th.Cancel(ctx, a); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Cancel on a closed client: %v, want unavailable", err)
	}
}

func TestRateLimiter(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{})
	l, err := redis.NewRateLimiter(e.client, redis.RateLimitConfig{Name: "register", Limit: 2, ClientLimit: 3, Window: time.Minute, Digests: mac(t)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		source string
		limit  int
	}{{"ip:192.0.2.1", 2}, {"client:web", 3}} {
		for i := range tt.limit {
			if wait, err := l.Allow(context.Background(), tt.source); err != nil || wait != 0 {
				t.Fatalf("%s request %d: wait %v, %v", tt.source, i+1, wait, err)
			}
		}
		if wait, _ := l.Allow(context.Background(), tt.source); wait <= 0 {
			t.Errorf("%s over its limit: wait %v, want positive", tt.source, wait)
		}
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
		{"ReserveLeavesNoRoom", redis.ThrottleConfig{LockAfter: 10, HardLockAfter: 15, FamiliarReserve: 10}},
		{"MaxLockBelowFirst", redis.ThrottleConfig{LockFor: time.Hour, MaxLock: time.Minute}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.Digests = mac(t)
			if _, err := redis.NewLoginThrottle(nil, tt.cfg); err == nil {
				t.Error("NewLoginThrottle succeeded, want a config error")
			}
		})
	}
	if _, err := redis.NewLoginThrottle(nil, redis.ThrottleConfig{}); err == nil {
		t.Error("NewLoginThrottle without a digester succeeded")
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

// TestLockedAndUnlock: the account is Locked once it reached the ceiling
// of consecutive failures; Unlock lets everyone try again and keeps the
// familiar sources familiar.
func TestLockedAndUnlock(t *testing.T) {
	e := newEnv(t, redis.ThrottleConfig{LockAfter: 2, LockFor: time.Minute, HardLockAfter: 4, FamiliarReserve: 1, Memory: time.Hour})
	ada := domain.Email("ada@example.com")
	ctx := context.Background()
	e.succeed(t, attempt(string(ada), owner))
	e.fail(t, attempt(string(ada), owner), 1)
	e.fail(t, attempt(string(ada), unfamiliar(1)), 1)
	e.fail(t, attempt(string(ada), unfamiliar(2)), 1)
	if locked, err := e.th.Locked(ctx, ada); err != nil || locked {
		t.Fatalf("Locked after 3 of 4 = %v, %v; want false", locked, err)
	}
	e.fail(t, attempt(string(ada), owner), 1)
	if locked, err := e.th.Locked(ctx, ada); err != nil || !locked {
		t.Fatalf("Locked after 4 of 4 = %v, %v; want true", locked, err)
	}
	if v := e.begin(t, attempt(string(ada), owner)); !v.AccountLocked {
		t.Fatal("the owner let through past the ceiling")
	}
	if err := e.th.Unlock(ctx, ada); err != nil {
		t.Fatal(err)
	}
	if locked, _ := e.th.Locked(ctx, ada); locked {
		t.Error("still locked after Unlock")
	}
	v := e.begin(t, attempt(string(ada), unfamiliar(3)))
	if v.AccountLocked {
		t.Error("a stranger still locked out after Unlock")
	}
	if v := e.begin(t, attempt(string(ada), owner)); v.AccountLocked || !v.Familiar {
		t.Errorf("owner after Unlock: %+v, want let through and familiar", v)
	}
}
