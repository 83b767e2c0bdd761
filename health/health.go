// Package health keeps what the worker knows of its stores' health: one
// Store per store (PostgreSQL, Redis), down or up, as its pings last saw
// it. It is the one source of truth for two readers: /readyz, whose check
// is Store.Check, and the application service, which answers a request
// that needs a store known to be down UNAVAILABLE at once instead of
// letting it wait in a worker slot for the whole retry window.
//
// A store is found down by a failed ping: /readyz's, or the one a failed
// request asks for (Suspect); one refused at once, or two in a row that
// ran out of time (one may have waited for a busy connection pool). While it is down, Run pings it every
// Interval, and the first ping that succeeds marks it up: the gate opens
// within an interval and a ping of the store's return. While it is up, it
// costs nothing: no ping runs but those /readyz and failed requests ask
// for.
package health

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authworker/authworker/domain"
)

// Defaults of Config.
const (
	DefaultInterval = 250 * time.Millisecond
	DefaultTimeout  = time.Second
)

// Config configures a Store.
type Config struct {
	// Name names the store in logs, errors and metrics: "postgres", "redis".
	Name string
	// Ping checks that the store answers; nil when it does.
	Ping func(ctx context.Context) error
	// Interval is how often a store marked down is pinged. Default
	// DefaultInterval.
	Interval time.Duration
	// Timeout bounds a ping of Run's. Default DefaultTimeout.
	Timeout time.Duration
	Logger  *slog.Logger // default discards
}

func (c *Config) setDefaults() {
	if c.Interval == 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout == 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.Name == "":
		return errors.New("health: a store name is required")
	case c.Ping == nil:
		return errors.New("health: a ping is required")
	case c.Interval <= 0:
		return errors.New("health: interval must be positive")
	case c.Timeout <= 0:
		return errors.New("health: timeout must be positive")
	}
	return nil
}

// Store is the health of one store. It is safe for concurrent use.
type Store struct {
	cfg  Config
	down atomic.Bool
	// downs counts the times the store was found down.
	downs atomic.Uint64
	// wake asks Run for a ping now; it holds one request at most.
	wake chan struct{}

	mu sync.Mutex // orders the recording of ping results with the logs
	// slow counts the pings in a row that ran out of time (under mu).
	slow int
}

// New returns the health of the store cfg names, up until a ping says
// otherwise.
func New(cfg Config) (*Store, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Store{cfg: cfg, wake: make(chan struct{}, 1)}, nil
}

// Name is the store's name.
func (s *Store) Name() string { return s.cfg.Name }

// Down reports whether the store is known to be down: its last ping failed.
func (s *Store) Down() bool { return s.down.Load() }

// Downs counts the times the store was found down since New.
func (s *Store) Downs() uint64 { return s.downs.Load() }

// Suspect asks for a ping now, because a request found the store
// unavailable: Run pings it at once, and marks it down if the ping fails.
// It does not block, and does nothing while the store is known down (Run
// pings it every Interval then), so that the requests refused meanwhile
// add no pings.
func (s *Store) Suspect() {
	if s.down.Load() {
		return
	}
	select {
	case s.wake <- struct{}{}:
	default: // a ping is asked for already
	}
}

// Check pings the store and records what it saw: the readiness check of
// /readyz, so that readiness and the gate agree. It returns
// CodeUnavailable when the store does not answer.
func (s *Store) Check(ctx context.Context) error {
	err := s.cfg.Ping(ctx)
	if err != nil && errors.Is(ctx.Err(), context.Canceled) {
		// The caller went away: that says nothing of the store. Pings
		// that run out of time do, two in a row (record).
		return err
	}
	s.record(err, errors.Is(ctx.Err(), context.DeadlineExceeded))
	if err != nil && domain.ErrorCode(err) != domain.CodeUnavailable {
		err = domain.Unavailable(s.cfg.Name, err)
	}
	return err
}

// record marks the store down or up after a ping that returned err;
// timedOut says it ran out of its caller's time. One such ping is not
// enough: it may have waited for a connection of a busy pool rather than
// for a dead store (PostgreSQL's ping takes one from the pool); a second
// in a row is. A ping the store refused is enough at once.
func (s *Store) record(err error, timedOut bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err != nil && timedOut {
		if s.slow++; s.slow < 2 {
			return
		}
	} else {
		s.slow = 0
	}
	was := s.down.Load()
	switch {
	case err != nil && !was:
		s.down.Store(true)
		s.downs.Add(1)
		s.cfg.Logger.Warn("store down: requests that need it are answered unavailable at once", "store", s.cfg.Name, "err", err)
	case err == nil && was:
		s.down.Store(false)
		s.cfg.Logger.Info("store back", "store", s.cfg.Name)
	}
}

// Run pings the store when Suspect asks, and every Interval while it is
// down, until ctx ends.
func (s *Store) Run(ctx context.Context) {
	t := time.NewTicker(s.cfg.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.wake:
		case <-t.C:
			if !s.down.Load() {
				continue
			}
		}
		s.probe(ctx)
	}
}

// probe pings the store once, within Timeout.
func (s *Store) probe(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	_ = s.Check(ctx)
}
