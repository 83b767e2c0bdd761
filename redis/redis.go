// Package redis holds the Redis adapters: login-failure counters and locks
// now, and later the fast revocation denylist. Redis holds nothing that
// PostgreSQL cannot rebuild; when it is down, the adapters fail closed with
// domain.CodeUnavailable.
package redis

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"time"

	goredis "github.com/redis/go-redis/v9"

	"github.com/authworker/authworker/domain"
)

// Config configures a Client.
type Config struct {
	URL       string // redis://[user:password@]host:port/db, or rediss:// for TLS
	KeyPrefix string // prepended to every key; default "authworker:"

	// DialTimeout bounds connecting and each command; a slow Redis then
	// fails a request fast instead of holding a worker. Default 2 seconds.
	Timeout time.Duration
}

func (c *Config) setDefaults() {
	if c.KeyPrefix == "" {
		c.KeyPrefix = "authworker:"
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("redis URL is required")
	}
	if _, err := goredis.ParseURL(c.URL); err != nil {
		return fmt.Errorf("redis URL %s: %w", redact(c.URL), errors.Unwrap(err))
	}
	if c.Timeout <= 0 {
		return errors.New("redis timeout must be positive")
	}
	return nil
}

// Client is a connection pool to Redis.
type Client struct {
	rdb    *goredis.Client
	prefix string
}

// Open connects to Redis and checks that it answers.
func Open(ctx context.Context, cfg Config) (*Client, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	opts, err := goredis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("redis URL %s: invalid", redact(cfg.URL))
	}
	opts.DialTimeout = cfg.Timeout
	opts.ReadTimeout = cfg.Timeout
	opts.WriteTimeout = cfg.Timeout
	// One dial per attempt of a command, not the library's five 100 ms
	// apart: with its retries of the command on top, a refused dial held a
	// request 1.5 to 2 s while Redis was down, and every worker slot with
	// it, before the worker could tell the store was down.
	opts.DialerRetries = 1
	c := &Client{rdb: goredis.NewClient(opts), prefix: cfg.KeyPrefix}
	if err := c.Ping(ctx); err != nil {
		c.rdb.Close()
		return nil, err
	}
	return c, nil
}

// PoolStats returns the state of the connection pool, for metrics.
func (c *Client) PoolStats() *goredis.PoolStats { return c.rdb.PoolStats() }

// Ping checks that Redis answers. It returns CodeUnavailable otherwise.
func (c *Client) Ping(ctx context.Context) error {
	if err := c.rdb.Ping(ctx).Err(); err != nil {
		return domain.Unavailable("redis", err)
	}
	return nil
}

// Close closes the pool. It is safe to call more than once.
func (c *Client) Close() error {
	err := c.rdb.Close()
	if errors.Is(err, goredis.ErrClosed) {
		return nil
	}
	return err
}

func (c *Client) key(parts ...string) string {
	k := c.prefix
	for i, p := range parts {
		if i > 0 {
			k += ":"
		}
		k += p
	}
	return k
}

// redact hides the password of a URL, for messages.
func redact(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
