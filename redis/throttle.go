package redis

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authworker/authworker/domain"
)

// ThrottleConfig sets how login failures are counted and punished.
//
// An account locks after LockAfter consecutive failures, first for LockFor,
// then twice as long after each further failure, up to MaxLock. After
// HardLockAfter consecutive failures it stays locked until Memory has passed
// without an attempt, so an account never sees more than HardLockAfter
// consecutive failures within Memory. A success clears the account's count.
//
// A source (an IP address) may fail SourceLimit times per SourceWindow across
// all accounts; then it is refused with a retry-after until the window ends.
// Successes do not clear it, so one valid account cannot cover a stuffing run.
type ThrottleConfig struct {
	LockAfter     int           // default 10
	LockFor       time.Duration // default 1 minute
	MaxLock       time.Duration // default 1 hour
	HardLockAfter int           // default 100, the most NIST SP 800-63B allows
	Memory        time.Duration // default 24 hours
	SourceLimit   int           // default 100
	SourceWindow  time.Duration // default 15 minutes
}

// Defaults of ThrottleConfig that operators set.
const (
	DefaultLockAfter   = 10
	DefaultSourceLimit = 100
)

func (c *ThrottleConfig) setDefaults() {
	if c.LockAfter == 0 {
		c.LockAfter = DefaultLockAfter
	}
	if c.LockFor == 0 {
		c.LockFor = time.Minute
	}
	if c.MaxLock == 0 {
		c.MaxLock = time.Hour
	}
	if c.HardLockAfter == 0 {
		c.HardLockAfter = 100
	}
	if c.Memory == 0 {
		c.Memory = 24 * time.Hour
	}
	if c.SourceLimit == 0 {
		c.SourceLimit = DefaultSourceLimit
	}
	if c.SourceWindow == 0 {
		c.SourceWindow = 15 * time.Minute
	}
}

// Validate reports the first setting that cannot work.
func (c ThrottleConfig) Validate() error {
	switch {
	case c.LockAfter < 1:
		return errors.New("lock-after must be at least 1")
	case c.HardLockAfter < c.LockAfter || c.HardLockAfter > 100:
		return fmt.Errorf("hard-lock-after must be between lock-after (%d) and 100, got %d", c.LockAfter, c.HardLockAfter)
	case c.LockFor < time.Millisecond || c.MaxLock < c.LockFor:
		return errors.New("lock durations must be positive, max at least the first")
	case c.Memory < c.MaxLock:
		return errors.New("failure memory must be at least the longest lock")
	case c.SourceLimit < 1 || c.SourceWindow < time.Millisecond:
		return errors.New("source limit and window must be positive")
	}
	return nil
}

// LoginThrottle implements domain.LoginThrottle on Redis.
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

// Keys hold a hash of the account and the source, not the e-mail address or
// IP itself. The account's two keys share a hash tag, so the failure script
// touches one slot and works on Redis Cluster.
func (t *LoginThrottle) accountKeys(account domain.Email) (count, lock string) {
	tag := "{" + digest(string(account)) + "}"
	return t.client.key("login", "acct", tag, "n"), t.client.key("login", "acct", tag, "lock")
}

func (t *LoginThrottle) sourceKey(source string) string {
	return t.client.key("login", "src", digest(source))
}

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:16])
}

// Check implements domain.LoginThrottle.
func (t *LoginThrottle) Check(ctx context.Context, a domain.LoginAttempt) (domain.ThrottleVerdict, error) {
	_, lockKey := t.accountKeys(a.Account)
	pipe := t.client.rdb.Pipeline()
	lock := pipe.Exists(ctx, lockKey)
	var srcCount *goredis.StringCmd
	var srcTTL *goredis.DurationCmd
	if a.Source != "" {
		k := t.sourceKey(a.Source)
		srcCount = pipe.Get(ctx, k)
		srcTTL = pipe.PTTL(ctx, k)
	}
	if _, err := pipe.Exec(ctx); err != nil && !errors.Is(err, goredis.Nil) {
		return domain.ThrottleVerdict{}, fmt.Errorf("check login throttle: %w", domain.Unavailable("throttle store", err))
	}
	v := domain.ThrottleVerdict{AccountLocked: lock.Val() > 0}
	if srcCount != nil {
		n, err := srcCount.Int()
		if err != nil && !errors.Is(err, goredis.Nil) {
			return domain.ThrottleVerdict{}, fmt.Errorf("check login throttle: %w", domain.Unavailable("throttle store", err))
		}
		if n >= t.cfg.SourceLimit {
			v.SourceRetryAfter = srcTTL.Val()
			if v.SourceRetryAfter <= 0 {
				v.SourceRetryAfter = t.cfg.SourceWindow
			}
		}
	}
	return v, nil
}

// failAccount counts a failure and sets the lock when due. KEYS: count, lock.
// ARGV: memory ms, lock-after, first lock ms, max lock ms, hard-lock-after.
var failAccount = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
local lockAfter, hardAfter = tonumber(ARGV[2]), tonumber(ARGV[5])
if n >= hardAfter then
  redis.call('SET', KEYS[2], n, 'PX', ARGV[1])
elseif n >= lockAfter then
  local d = tonumber(ARGV[3]) * 2 ^ (n - lockAfter)
  d = math.min(d, tonumber(ARGV[4]))
  redis.call('SET', KEYS[2], n, 'PX', math.floor(d))
end
return n
`)

// failSource counts a failure in the source's fixed window. KEYS: count.
// ARGV: window ms.
var failSource = goredis.NewScript(`
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('PEXPIRE', KEYS[1], ARGV[1]) end
return n
`)

// Failed implements domain.LoginThrottle.
func (t *LoginThrottle) Failed(ctx context.Context, a domain.LoginAttempt) error {
	count, lock := t.accountKeys(a.Account)
	err := failAccount.Run(ctx, t.client.rdb, []string{count, lock},
		t.cfg.Memory.Milliseconds(), t.cfg.LockAfter, t.cfg.LockFor.Milliseconds(),
		t.cfg.MaxLock.Milliseconds(), t.cfg.HardLockAfter).Err()
	if err != nil {
		return fmt.Errorf("count failed login: %w", domain.Unavailable("throttle store", err))
	}
	if a.Source == "" {
		return nil
	}
	if err := failSource.Run(ctx, t.client.rdb, []string{t.sourceKey(a.Source)}, t.cfg.SourceWindow.Milliseconds()).Err(); err != nil {
		return fmt.Errorf("count failed login: %w", domain.Unavailable("throttle store", err))
	}
	return nil
}

// Succeeded implements domain.LoginThrottle.
func (t *LoginThrottle) Succeeded(ctx context.Context, a domain.LoginAttempt) error {
	count, lock := t.accountKeys(a.Account)
	if err := t.client.rdb.Del(ctx, count, lock).Err(); err != nil {
		return fmt.Errorf("clear failed logins: %w", domain.Unavailable("throttle store", err))
	}
	return nil
}
