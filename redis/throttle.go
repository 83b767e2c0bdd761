package redis

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authworker/authworker/domain"
)

// Digester computes keyed digests; seal.MAC implements it. Redis keys hold
// digests of e-mail addresses and IP addresses under a key derived from the
// KEK, never the addresses, and never plain hashes that a list of
// candidates could reverse.
type Digester interface {
	Sum(parts ...[]byte) []byte
}

// Defaults of ThrottleConfig that operators set.
const (
	DefaultLockAfter   = 10
	DefaultSourceLimit = 100
	DefaultClientLimit = 10000
)

// ThrottleConfig sets how login failures are counted and punished.
//
// Per account, failures are told apart by source. A source the account
// logged in from successfully within FamiliarFor is familiar; any other is
// unfamiliar. After LockAfter consecutive failures from unfamiliar sources,
// unfamiliar sources are locked out for LockFor, then twice as long after
// each further failure, up to MaxLock, while familiar sources are not: an
// attacker elsewhere cannot lock the owner out. Each source also has its
// own count on the account, with the same progressive lock, so one familiar
// source that fails repeatedly is slowed too. At most HardLockAfter (100,
// the NIST SP 800-63B ceiling) consecutive failures are allowed per account
// within Memory: unfamiliar sources stop FamiliarReserve short of it, so the
// last attempts belong to familiar sources. A success clears the account's
// consecutive counts.
//
// Across accounts, an IP source may fail SourceLimit times per SourceWindow
// (a calling service that gives no address, ClientLimit times); then it is
// refused with a retry-after until the window ends. Successes only undo
// their own attempt, so one valid account cannot cover a stuffing run.
type ThrottleConfig struct {
	LockAfter       int           // default 10
	LockFor         time.Duration // default 1 minute
	MaxLock         time.Duration // default 1 hour
	HardLockAfter   int           // default 100, the most NIST SP 800-63B allows
	FamiliarReserve int           // default 10
	Memory          time.Duration // default 24 hours
	FamiliarFor     time.Duration // default 90 days
	SourceLimit     int           // default 100
	ClientLimit     int           // default 10000
	SourceWindow    time.Duration // default 15 minutes
	// Digests keys the Redis key names. Required.
	Digests Digester
	Now     func() time.Time // default time.Now
}

func (c *ThrottleConfig) setDefaults() {
	defaults := []struct {
		v   *int
		def int
	}{
		{&c.LockAfter, DefaultLockAfter}, {&c.HardLockAfter, 100}, {&c.FamiliarReserve, 10},
		{&c.SourceLimit, DefaultSourceLimit}, {&c.ClientLimit, DefaultClientLimit},
	}
	for _, d := range defaults {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	durations := []struct {
		v   *time.Duration
		def time.Duration
	}{
		{&c.LockFor, time.Minute}, {&c.MaxLock, time.Hour}, {&c.Memory, 24 * time.Hour},
		{&c.FamiliarFor, 90 * 24 * time.Hour}, {&c.SourceWindow, 15 * time.Minute},
	}
	for _, d := range durations {
		if *d.v == 0 {
			*d.v = d.def
		}
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Validate reports the first setting that cannot work.
func (c ThrottleConfig) Validate() error {
	switch {
	case c.LockAfter < 1:
		return errors.New("lock-after must be at least 1")
	case c.HardLockAfter < c.LockAfter || c.HardLockAfter > 100:
		return fmt.Errorf("hard-lock-after must be between lock-after (%d) and 100, got %d", c.LockAfter, c.HardLockAfter)
	case c.FamiliarReserve < 1 || c.HardLockAfter-c.FamiliarReserve < c.LockAfter:
		return fmt.Errorf("familiar reserve must be between 1 and hard-lock-after minus lock-after (%d), got %d", c.HardLockAfter-c.LockAfter, c.FamiliarReserve)
	case c.LockFor < time.Millisecond || c.MaxLock < c.LockFor:
		return errors.New("lock durations must be positive, max at least the first")
	case c.Memory < c.MaxLock:
		return errors.New("failure memory must be at least the longest lock")
	case c.FamiliarFor < time.Second:
		return errors.New("familiar-for must be positive")
	case c.SourceLimit < 1 || c.ClientLimit < 1 || c.SourceWindow < time.Millisecond:
		return errors.New("source limits and window must be positive")
	case c.Digests == nil:
		return errors.New("a digester for key names is required")
	}
	return nil
}

// LoginThrottle implements domain.LoginThrottle on Redis. Each step is one
// Lua script, so checking and counting are atomic.
type LoginThrottle struct {
	client *Client
	cfg    ThrottleConfig
}

var _ domain.LoginThrottle = (*LoginThrottle)(nil)

// NewLoginThrottle returns a throttle storing its counters in client.
func NewLoginThrottle(client *Client, cfg ThrottleConfig) (*LoginThrottle, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &LoginThrottle{client: client, cfg: cfg}, nil
}

// attemptKeys are the keys of one attempt. The account's keys share a hash
// tag, so its script touches one slot and works on Redis Cluster; the
// source's window is a key of its own, in another script.
type attemptKeys struct {
	account []string // accountKeys
	window  string   // the source's failures across accounts
	source  string   // the source's digest, a member of the familiar set
	limit   int      // the window's limit
}

// accountKeys are an account's keys: its count of consecutive failures,
// that of failures from unfamiliar sources, the lock of unfamiliar sources,
// a hash of failures per source, a hash of lock expiries per source, and
// the sorted set of familiar sources.
func (t *LoginThrottle) accountKeys(account domain.Email) []string {
	acct := "{" + digest(t.cfg.Digests, "account", string(account)) + "}"
	k := func(name string) string { return t.client.key("login", "acct", acct, name) }
	return []string{k("n"), k("u"), k("ulock"), k("srcn"), k("srclock"), k("familiar")}
}

func (t *LoginThrottle) keys(a domain.LoginAttempt) attemptKeys {
	src := digest(t.cfg.Digests, "source", a.Source)
	limit := t.cfg.SourceLimit
	if strings.HasPrefix(a.Source, "client:") {
		limit = t.cfg.ClientLimit
	}
	return attemptKeys{
		account: t.accountKeys(a.Account),
		window:  t.client.key("login", "src", src),
		source:  src,
		limit:   limit,
	}
}

// digest names a value in a key: 128 bits of its keyed digest, in hex.
func digest(d Digester, kind, value string) string {
	return hex.EncodeToString(d.Sum([]byte(kind), []byte(value))[:16])
}

// reserveWindow counts an attempt in a fixed window unless the window is
// full. KEYS: count. ARGV: limit, window ms. Returns 0, or the ms left in
// a full window.
var reserveWindow = goredis.NewScript(`
local n = tonumber(redis.call('GET', KEYS[1]) or '0')
if n >= tonumber(ARGV[1]) then
  local left = redis.call('PTTL', KEYS[1])
  if left < 0 then left = tonumber(ARGV[2]) end
  return left
end
if redis.call('INCR', KEYS[1]) == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
`)

// releaseWindow undoes one reserveWindow. KEYS: count.
var releaseWindow = goredis.NewScript(`
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
return 0
`)

// beginAccount decides on an attempt on an account and counts it.
// KEYS: accountKeys. ARGV: source digest, memory ms, lock-after, first lock
// ms, max lock ms, hard cap, unfamiliar cap, now ms. Returns {refused,
// familiar, locked now}; locked now is the widest lock this attempt set:
// 0 none, 1 this source, 2 unfamiliar sources, 3 every source.
var beginAccount = goredis.NewScript(`
local src = ARGV[1]
local familiar = redis.call('ZSCORE', KEYS[6], src) and 1 or 0
local memory, lockAfter = tonumber(ARGV[2]), tonumber(ARGV[3])
local lockFor, maxLock = tonumber(ARGV[4]), tonumber(ARGV[5])
local hardCap, unfamiliarCap, now = tonumber(ARGV[6]), tonumber(ARGV[7]), tonumber(ARGV[8])
local lockedUntil = tonumber(redis.call('HGET', KEYS[5], src) or '0')
if lockedUntil > now or tonumber(redis.call('GET', KEYS[1]) or '0') >= hardCap then
  return {1, familiar, 0}
end
if familiar == 0 and (redis.call('EXISTS', KEYS[3]) == 1 or tonumber(redis.call('GET', KEYS[2]) or '0') >= unfamiliarCap) then
  return {1, familiar, 0}
end
local function lockDuration(n, cap)
  if n >= cap then return memory end
  return math.floor(math.min(lockFor * 2 ^ (n - lockAfter), maxLock))
end
local lockedNow = 0
local consecutive = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], memory)
local perSource = redis.call('HINCRBY', KEYS[4], src, 1)
redis.call('PEXPIRE', KEYS[4], memory)
if perSource >= lockAfter then
  redis.call('HSET', KEYS[5], src, now + lockDuration(perSource, hardCap))
  redis.call('PEXPIRE', KEYS[5], memory)
  lockedNow = 1
end
if familiar == 0 then
  local u = redis.call('INCR', KEYS[2])
  redis.call('PEXPIRE', KEYS[2], memory)
  if u >= lockAfter then
    redis.call('SET', KEYS[3], u, 'PX', lockDuration(u, unfamiliarCap))
    lockedNow = 2
  end
end
if consecutive >= hardCap then lockedNow = 3 end
return {0, familiar, lockedNow}
`)

// succeedAccount clears the account's consecutive counts and the source's
// count, and remembers the source. KEYS: accountKeys. ARGV: source digest,
// now ms, familiar-for ms.
var succeedAccount = goredis.NewScript(`
redis.call('DEL', KEYS[1], KEYS[2], KEYS[3])
redis.call('HDEL', KEYS[4], ARGV[1])
redis.call('HDEL', KEYS[5], ARGV[1])
redis.call('ZADD', KEYS[6], ARGV[2], ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[6], '-inf', tonumber(ARGV[2]) - tonumber(ARGV[3]))
redis.call('ZREMRANGEBYRANK', KEYS[6], 0, -65)
redis.call('PEXPIRE', KEYS[6], ARGV[3])
return 0
`)

// cancelAccount undoes beginAccount's counts. KEYS: accountKeys. ARGV:
// source digest.
var cancelAccount = goredis.NewScript(`
if tonumber(redis.call('GET', KEYS[1]) or '0') > 0 then redis.call('DECR', KEYS[1]) end
if tonumber(redis.call('HGET', KEYS[4], ARGV[1]) or '0') > 0 then redis.call('HINCRBY', KEYS[4], ARGV[1], -1) end
if not redis.call('ZSCORE', KEYS[6], ARGV[1]) and tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
`)

// lockScopes are the scopes of beginAccount's locked-now result.
var lockScopes = map[int64]domain.LockScope{1: domain.LockSource, 2: domain.LockUnfamiliarSources, 3: domain.LockAll}

// Begin implements domain.LoginThrottle.
func (t *LoginThrottle) Begin(ctx context.Context, a domain.LoginAttempt) (domain.ThrottleVerdict, error) {
	k := t.keys(a)
	left, err := reserveWindow.Run(ctx, t.client.rdb, []string{k.window}, k.limit, t.cfg.SourceWindow.Milliseconds()).Int64()
	if err != nil {
		return domain.ThrottleVerdict{}, fmt.Errorf("reserve login attempt: %w", domain.Unavailable("throttle store", err))
	}
	if left > 0 {
		return domain.ThrottleVerdict{SourceRetryAfter: time.Duration(left) * time.Millisecond}, nil
	}
	res, err := beginAccount.Run(ctx, t.client.rdb, k.account, k.source,
		t.cfg.Memory.Milliseconds(), t.cfg.LockAfter, t.cfg.LockFor.Milliseconds(), t.cfg.MaxLock.Milliseconds(),
		t.cfg.HardLockAfter, t.cfg.HardLockAfter-t.cfg.FamiliarReserve, t.cfg.Now().UnixMilli()).Int64Slice()
	if err != nil || len(res) != 3 {
		return domain.ThrottleVerdict{}, fmt.Errorf("reserve login attempt: %w", domain.Unavailable("throttle store", err))
	}
	return domain.ThrottleVerdict{AccountLocked: res[0] == 1, Familiar: res[1] == 1, LockedNow: lockScopes[res[2]]}, nil
}

// Succeeded implements domain.LoginThrottle.
func (t *LoginThrottle) Succeeded(ctx context.Context, a domain.LoginAttempt) error {
	k := t.keys(a)
	err := succeedAccount.Run(ctx, t.client.rdb, k.account, k.source, t.cfg.Now().UnixMilli(), t.cfg.FamiliarFor.Milliseconds()).Err()
	if err == nil {
		err = releaseWindow.Run(ctx, t.client.rdb, []string{k.window}).Err()
	}
	if err != nil {
		return fmt.Errorf("clear failed logins: %w", domain.Unavailable("throttle store", err))
	}
	return nil
}

// Cancel implements domain.LoginThrottle.
func (t *LoginThrottle) Cancel(ctx context.Context, a domain.LoginAttempt) error {
	k := t.keys(a)
	err := cancelAccount.Run(ctx, t.client.rdb, k.account, k.source).Err()
	if err == nil {
		err = releaseWindow.Run(ctx, t.client.rdb, []string{k.window}).Err()
	}
	if err != nil {
		return fmt.Errorf("cancel login attempt: %w", domain.Unavailable("throttle store", err))
	}
	return nil
}

// Defaults of the registration limit.
const (
	DefaultRegisterLimit       = 20
	DefaultClientRegisterLimit = 100000
	DefaultRegisterWindow      = time.Hour
)

// Locked implements domain.LoginThrottle.
func (t *LoginThrottle) Locked(ctx context.Context, account domain.Email) (bool, error) {
	n, err := t.client.rdb.Get(ctx, t.accountKeys(account)[0]).Int()
	if err != nil && !errors.Is(err, goredis.Nil) {
		return false, fmt.Errorf("check account lock: %w", domain.Unavailable("throttle store", err))
	}
	return n >= t.cfg.HardLockAfter, nil
}

// Unlock implements domain.LoginThrottle: the account's counts and locks
// go; its familiar sources stay familiar.
func (t *LoginThrottle) Unlock(ctx context.Context, account domain.Email) error {
	if err := t.client.rdb.Del(ctx, t.accountKeys(account)[:5]...).Err(); err != nil {
		return fmt.Errorf("unlock account: %w", domain.Unavailable("throttle store", err))
	}
	return nil
}

// RateLimitConfig sets a fixed-window limit per source.
type RateLimitConfig struct {
	// Name tells limiters apart in key names, such as "register".
	Name string
	// Limit is how many requests an IP source may make per Window, and
	// ClientLimit how many a calling service that gives no address may.
	Limit, ClientLimit int
	Window             time.Duration
	Digests            Digester // required
}

// Validate reports the first setting that cannot work.
func (c RateLimitConfig) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("a rate limit needs a name")
	case c.Limit < 1 || c.ClientLimit < 1 || c.Window < time.Millisecond:
		return fmt.Errorf("%s rate limit: limits and window must be positive", c.Name)
	case c.Digests == nil:
		return errors.New("a digester for key names is required")
	}
	return nil
}

// RateLimiter implements domain.RateLimiter on Redis.
type RateLimiter struct {
	client *Client
	cfg    RateLimitConfig
}

var _ domain.RateLimiter = (*RateLimiter)(nil)

// NewRateLimiter returns a limiter storing its windows in client.
func NewRateLimiter(client *Client, cfg RateLimitConfig) (*RateLimiter, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &RateLimiter{client: client, cfg: cfg}, nil
}

// Allow implements domain.RateLimiter.
func (l *RateLimiter) Allow(ctx context.Context, source string) (time.Duration, error) {
	limit := l.cfg.Limit
	if strings.HasPrefix(source, "client:") {
		limit = l.cfg.ClientLimit
	}
	key := l.client.key("limit", l.cfg.Name, digest(l.cfg.Digests, "source", source))
	left, err := reserveWindow.Run(ctx, l.client.rdb, []string{key}, limit, l.cfg.Window.Milliseconds()).Int64()
	if err != nil {
		return 0, fmt.Errorf("%s rate limit: %w", l.cfg.Name, domain.Unavailable("throttle store", err))
	}
	return time.Duration(left) * time.Millisecond, nil
}
