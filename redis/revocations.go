package redis

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/authworker/authworker/domain"
)

// RevokedSource is where revocations are durable: the SessionRepository.
type RevokedSource interface {
	RevokedSince(ctx context.Context, since time.Time) ([]domain.SessionID, error)
}

// RevocationConfig configures a RevocationList.
type RevocationConfig struct {
	// Hold is how long a revoked session stays listed: the lifetime of an
	// access token plus the clock skew verifiers allow. Required.
	Hold time.Duration
	// Source rebuilds the list when Redis has lost it. Required.
	Source RevokedSource
	// SyncInterval is how often Run copies the recent revocations again,
	// repairing any that failed to reach Redis. Default 10 seconds.
	SyncInterval time.Duration
	Now          func() time.Time // default time.Now
	Logger       *slog.Logger
}

// RevocationList implements domain.RevocationList on Redis: one key per
// revoked session, expiring when its access tokens have, and a marker that
// says the list is complete. When the marker is missing (Redis restarted
// empty, or was flushed), the list is rebuilt from the source before any
// answer; when Redis is down, Revoked fails closed.
type RevocationList struct {
	client *Client
	cfg    RevocationConfig

	rebuildMu sync.Mutex // one rebuild at a time in this process
}

var _ domain.RevocationList = (*RevocationList)(nil)

// NewRevocationList returns a list kept in client.
func NewRevocationList(client *Client, cfg RevocationConfig) (*RevocationList, error) {
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = 10 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case cfg.Hold <= 0:
		return nil, errors.New("revocation list: hold must be positive")
	case cfg.Source == nil:
		return nil, errors.New("revocation list: a source is required")
	case cfg.SyncInterval <= 0:
		return nil, errors.New("revocation list: sync interval must be positive")
	}
	return &RevocationList{client: client, cfg: cfg}, nil
}

func (l *RevocationList) key(id domain.SessionID) string {
	return l.client.key("revoked", string(id))
}

func (l *RevocationList) marker() string { return l.client.key("revoked", "complete") }

// Revoke implements domain.RevocationList.
func (l *RevocationList) Revoke(ctx context.Context, ids ...domain.SessionID) error {
	if len(ids) == 0 {
		return nil
	}
	pipe := l.client.rdb.Pipeline()
	for _, id := range ids {
		pipe.Set(ctx, l.key(id), 1, l.cfg.Hold)
	}
	if _, err := pipe.Exec(ctx); err != nil {
		return fmt.Errorf("list revoked sessions: %w", domain.Unavailable("revocation list", err))
	}
	return nil
}

// Revoked implements domain.RevocationList: one round trip when the list
// is complete.
func (l *RevocationList) Revoked(ctx context.Context, id domain.SessionID) (bool, error) {
	pipe := l.client.rdb.Pipeline()
	complete := pipe.Exists(ctx, l.marker())
	revoked := pipe.Exists(ctx, l.key(id))
	if _, err := pipe.Exec(ctx); err != nil {
		return false, fmt.Errorf("check revocation: %w", domain.Unavailable("revocation list", err))
	}
	if complete.Val() == 1 {
		return revoked.Val() == 1, nil
	}
	if err := l.rebuild(ctx); err != nil {
		return false, err
	}
	n, err := l.client.rdb.Exists(ctx, l.key(id)).Result()
	if err != nil {
		return false, fmt.Errorf("check revocation: %w", domain.Unavailable("revocation list", err))
	}
	return n == 1, nil
}

// rebuild copies every session revoked within Hold from the source, then
// marks the list complete.
func (l *RevocationList) rebuild(ctx context.Context) error {
	l.rebuildMu.Lock()
	defer l.rebuildMu.Unlock()
	if n, err := l.client.rdb.Exists(ctx, l.marker()).Result(); err == nil && n == 1 {
		return nil // another caller rebuilt it meanwhile
	}
	if err := l.sync(ctx); err != nil {
		return err
	}
	if err := l.client.rdb.Set(ctx, l.marker(), 1, 0).Err(); err != nil {
		return fmt.Errorf("rebuild revocation list: %w", domain.Unavailable("revocation list", err))
	}
	l.cfg.Logger.Info("revocation list rebuilt")
	return nil
}

// sync copies every session revoked within Hold from the source.
func (l *RevocationList) sync(ctx context.Context) error {
	ids, err := l.cfg.Source.RevokedSince(ctx, l.cfg.Now().Add(-l.cfg.Hold))
	if err != nil {
		return fmt.Errorf("rebuild revocation list: %w", err)
	}
	return l.Revoke(ctx, ids...)
}

// Run copies the recent revocations every SyncInterval until ctx ends, so
// that one that failed to reach Redis when it was made is listed within an
// interval. A failed sync is retried at the next tick.
func (l *RevocationList) Run(ctx context.Context) {
	t := time.NewTicker(l.cfg.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.sync(ctx); err != nil && ctx.Err() == nil {
			l.cfg.Logger.Warn("sync revocation list", "err", err)
		}
	}
}
