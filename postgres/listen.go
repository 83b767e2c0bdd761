package postgres

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
)

// dial opens a connection of its own, outside the pool, with the pool's
// settings, named after the pool's application with role appended: for a
// session that holds locks or listens for notifications. With idle, the
// end of a call's context ends its wait at once, rather than asking the
// server to cancel a statement first and waiting for its answer (the
// pool's way, which a connection waiting idle for notifications would sit
// out for the whole delay, two seconds, holding up shutdown).
func (db *DB) dial(ctx context.Context, role string, idle bool) (*pgx.Conn, error) {
	cc := db.pool.Config().ConnConfig.Copy()
	if idle {
		cc.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
			return &pgconn.DeadlineContextWatcherHandler{Conn: c.Conn()}
		}
	}
	name := cc.RuntimeParams["application_name"]
	if name == "" {
		name = "authworker"
	}
	cc.RuntimeParams["application_name"] = name + " " + role
	// A session cut off without closing its connection (its host gone, the
	// network split) keeps its locks until the server notices: have the
	// server probe the connection, so that others take over within about
	// half a minute rather than the system's two hours.
	for param, value := range map[string]string{
		"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
	} {
		if _, set := cc.RuntimeParams[param]; !set {
			cc.RuntimeParams[param] = value
		}
	}
	timeout := cc.ConnectTimeout
	if timeout == 0 {
		timeout = DefaultConnectTimeout
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	return pgx.ConnectConfig(ctx, cc)
}

// Backoff of ListenSigningKeys between connection attempts.
const (
	listenMinBackoff = 500 * time.Millisecond
	listenMaxBackoff = 30 * time.Second
)

// ListenSigningKeys calls changed each time UpdateSigningKeys commits a
// change, on any worker, until ctx ends. It holds a connection of its own,
// and calls changed after each reconnection too, since a change may have
// committed while it was away; it logs failures and keeps reconnecting,
// backing off up to half a minute. changed must return quickly: it is
// called for every notification in turn.
func (db *DB) ListenSigningKeys(ctx context.Context, logger *slog.Logger, changed func()) {
	backoff := listenMinBackoff
	for ctx.Err() == nil {
		listened, err := db.listen(ctx, SigningKeysChannel, changed)
		if ctx.Err() != nil {
			return
		}
		if listened {
			backoff = listenMinBackoff
		}
		logger.Warn("signing key notifications lost; reconnecting", "err", err, "retry_in", backoff)
		if !sleep(ctx, backoff) {
			return
		}
		backoff = min(2*backoff, listenMaxBackoff)
	}
}

// listen runs one session of ListenSigningKeys. listened reports whether
// it got as far as listening.
func (db *DB) listen(ctx context.Context, channel string, changed func()) (listened bool, err error) {
	conn, err := db.dial(ctx, "key listener", true)
	if err != nil {
		return false, fmt.Errorf("connect: %w", storeError(signingKeyStore, err))
	}
	defer func() {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
		defer cancel()
		_ = conn.Close(ctx)
	}()
	lctx, cancel := context.WithTimeout(ctx, statementTimeout)
	_, err = conn.Exec(lctx, "LISTEN "+pgx.Identifier{channel}.Sanitize())
	cancel()
	if err != nil {
		return false, fmt.Errorf("listen: %w", storeError(signingKeyStore, err))
	}
	changed()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true, fmt.Errorf("wait for notifications: %w", storeError(signingKeyStore, err))
		}
		changed()
	}
}
