// Package postgres implements authworker's storage ports on PostgreSQL, the
// source of truth for users, sessions, refresh tokens, signing keys and
// request outcomes.
//
// Open a DB, Migrate it, and build the repositories on it:
//
//	db, err := postgres.Open(ctx, postgres.Config{URL: url})
//	...
//	defer db.Close()
//	if err := db.Migrate(ctx); err != nil { ... }
//	users := postgres.NewUserRepository(db)
//
// Driver errors are translated at this boundary into *domain.Error: unique
// violations become CodeConflict, missing rows CodeNotFound, and connection
// failures, timeouts and cancellations CodeUnavailable (the cause stays in
// the chain, so errors.Is(err, context.Canceled) still holds).
//
// Several repository calls become one unit of work through DB.InTx, which
// implements domain.Transactor: the user, session and outcome repositories
// run their statements on the transaction in the context they are given,
// and the Outbox refuses to run outside one.
// Their writes that may fail with an expected error (CreateUser,
// CreateSession) run in a savepoint, so that the failure leaves the
// transaction usable; SaveOutcome reports a conflict without failing its
// statement and needs none. The signing key repository never joins a
// transaction: key management is not part of a request.
//
// The Outbox stores messages to publish in the transaction of the change
// they report; an OutboxRelay, one per worker, publishes them once that
// commits through an OutboxPublisher (producers.OutboxPublisher, wired in
// cmd/authworker), on a connection of its own beside the pool.
//
// Timestamps are stored with microsecond precision, the precision of
// PostgreSQL's timestamptz: times are truncated to the microsecond on the
// way in and returned in UTC. Callers must not expect nanoseconds back.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"
	"github.com/pressly/goose/v3/lock"

	"github.com/authworker/authworker/domain"
)

// Defaults for Config.
const (
	DefaultMaxConns       int32 = 10
	DefaultConnectTimeout       = 5 * time.Second
)

// Config configures a DB.
type Config struct {
	// URL is the connection string, such as
	// postgres://user:password@host:5432/authworker?sslmode=verify-full.
	// Required. It holds a password, so it is never echoed in errors.
	URL string

	// MaxConns caps the connection pool. Zero means DefaultMaxConns.
	MaxConns int32

	// ConnectTimeout bounds Open (dialling and the first ping) and every
	// later dial, so that requests fail fast while the server is down
	// instead of waiting for their own deadline. Zero means
	// DefaultConnectTimeout; a connect_timeout in URL takes precedence for
	// later dials.
	ConnectTimeout time.Duration
}

func (c *Config) setDefaults() {
	if c.MaxConns == 0 {
		c.MaxConns = DefaultMaxConns
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = DefaultConnectTimeout
	}
}

// Validate reports the first problem with c. Zero values are valid and mean
// the defaults. The error never contains the password.
func (c Config) Validate() error {
	if c.URL == "" {
		return errors.New("postgres: URL is required")
	}
	// The parser's error may quote the connection string, password
	// included, so it is dropped rather than wrapped.
	if _, err := pgxpool.ParseConfig(c.URL); err != nil {
		return fmt.Errorf("postgres: URL %s is not a valid connection string", redactURL(c.URL))
	}
	if c.MaxConns < 0 {
		return fmt.Errorf("postgres: MaxConns %d is negative", c.MaxConns)
	}
	if c.ConnectTimeout < 0 {
		return fmt.Errorf("postgres: ConnectTimeout %v is negative", c.ConnectTimeout)
	}
	return nil
}

// String describes c without the password, so that a Config can be logged.
func (c Config) String() string {
	return fmt.Sprintf("postgres.Config{URL: %s, MaxConns: %d, ConnectTimeout: %v}",
		redactURL(c.URL), c.MaxConns, c.ConnectTimeout)
}

// redactURL keeps what identifies the server (scheme, user name, host,
// database) and drops the rest: the password and a query that may hold one.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return "(connection string hidden)"
	}
	r := url.URL{Scheme: u.Scheme, Host: u.Host, Path: u.Path}
	if u.User != nil {
		r.User = url.User(u.User.Username())
	}
	return r.String()
}

// DB is a pool of connections to one PostgreSQL database, shared by the
// repositories built on it. It is safe for concurrent use.
type DB struct {
	pool *pgxpool.Pool
}

// Open connects to the database described by cfg and pings it, within
// cfg.ConnectTimeout. It returns CodeUnavailable when the server cannot be
// reached.
func Open(ctx context.Context, cfg Config) (*DB, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("postgres: URL %s is not a valid connection string", redactURL(cfg.URL))
	}
	pc.MaxConns = cfg.MaxConns
	if pc.ConnConfig.ConnectTimeout == 0 {
		pc.ConnConfig.ConnectTimeout = cfg.ConnectTimeout
	}
	// On cancellation, ask the server to cancel and read its answer, rather
	// than drop the connection with statements (COMMIT included) still in
	// its input: the outcome of the transaction is then known.
	pc.ConnConfig.BuildContextWatcherHandler = func(pgConn *pgconn.PgConn) ctxwatch.Handler {
		return &pgconn.CancelRequestContextWatcherHandler{Conn: pgConn, DeadlineDelay: 2 * time.Second}
	}
	if _, ok := pc.ConnConfig.RuntimeParams["application_name"]; !ok {
		pc.ConnConfig.RuntimeParams["application_name"] = "authworker"
	}

	ctx, cancel := context.WithTimeout(ctx, cfg.ConnectTimeout)
	defer cancel()
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", domain.Unavailable("database", err))
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: open: %w", domain.Unavailable("database", err))
	}
	return &DB{pool: pool}, nil
}

// PoolStat returns the state of the connection pool, for metrics. The
// outbox relay's own connections are not in it.
func (db *DB) PoolStat() *pgxpool.Stat { return db.pool.Stat() }

// Ping checks that the database answers, for readiness probes. It returns
// CodeUnavailable when it does not.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("ping: %w", domain.Unavailable("database", err))
	}
	return nil
}

// Close closes every connection, waiting for those in use to be released.
// It is safe to call more than once; repositories fail with CodeUnavailable
// afterwards.
func (db *DB) Close() {
	db.pool.Close() // idempotent
}

//go:embed migrations/*.sql
var migrationFiles embed.FS

// Migrate applies the embedded migrations that the database lacks, in
// version order, each in its own transaction. It holds a session-level
// advisory lock (goose's default lock id) while it runs, so that any number of
// workers may start at once: one migrates, the others wait and then find
// nothing to do. Versions the database has beyond the embedded ones, applied
// by a newer release, are left alone, so that older workers still start
// during a rolling deploy; migrations must therefore keep the schema usable
// by the release before them.
func (db *DB) Migrate(ctx context.Context) error {
	fsys, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	locker, err := lock.NewPostgresSessionLocker(
		lock.WithLockTimeout(1, 300),  // poll every second, for up to 5 minutes
		lock.WithUnlockTimeout(1, 60), // the lock also goes with the connection
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	sqlDB := stdlib.OpenDBFromPool(db.pool)
	defer func() { _ = sqlDB.Close() }() // leaves the pool open
	provider, err := goose.NewProvider(goose.DialectPostgres, sqlDB, fsys,
		goose.WithSessionLocker(locker),
		goose.WithDisableGlobalRegistry(true),
	)
	if err != nil {
		return fmt.Errorf("migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("migrate: %w", storeError("database", err))
	}
	return nil
}

// SQLSTATE codes the adapters act on.
const (
	uniqueViolation     = "23505"
	foreignKeyViolation = "23503"
)

// storeError translates a driver error into a *domain.Error, keeping err as
// the cause. what names the store in the caller-safe message. Violations of
// constraints a caller can trigger are translated where they can occur;
// here, errors that retrying may cure become CodeUnavailable and anything
// else, a bug, CodeInternal.
func storeError(what string, err error) error {
	if err == nil {
		return nil
	}
	if late, ok := errors.AsType[*lateError](err); ok {
		return late // translated already, by the statement's own translation
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		if transientSQLState(pgErr.Code) {
			return domain.Unavailable(what, err)
		}
		return &domain.Error{Code: domain.CodeInternal, Message: what + " error", Err: err}
	}
	if _, ok := errors.AsType[pgx.ScanArgError](err); ok {
		return &domain.Error{Code: domain.CodeInternal, Message: what + " error", Err: err}
	}
	// Bugs in the use of a transaction: a context kept past the end of its
	// InTx, or a failure that aborted the transaction ignored by fn.
	if errors.Is(err, pgx.ErrTxClosed) || errors.Is(err, pgx.ErrTxCommitRollback) {
		return &domain.Error{Code: domain.CodeInternal, Message: what + " error", Err: err}
	}
	// Everything else pgx returns without a server error is about getting to
	// the server and back: dial and I/O failures, timeouts, a closed pool, a
	// cancelled context.
	return domain.Unavailable(what, err)
}

// transientSQLState reports whether a server error may go away on retry.
func transientSQLState(code string) bool {
	switch code {
	case "40001", // serialization_failure
		"40P01", // deadlock_detected
		"55P03", // lock_not_available
		"57014", // query_canceled: statement timeout or cancel request
		"57P01", // admin_shutdown
		"57P02", // crash_shutdown
		"57P03", // cannot_connect_now
		"25006": // read_only_sql_transaction: connected to a standby after failover
		return true
	}
	return strings.HasPrefix(code, "08") || // connection exception
		strings.HasPrefix(code, "53") // insufficient resources: too many connections, disk full, ...
}

// sqlState returns the SQLSTATE and constraint of a server error in err's
// chain, or "" when there is none.
func sqlState(err error) (code, constraint string) {
	if _, late := errors.AsType[*lateError](err); late {
		return "", "" // translated already, by the statement's own translation
	}
	if pgErr, ok := errors.AsType[*pgconn.PgError](err); ok {
		return pgErr.Code, pgErr.ConstraintName
	}
	return "", ""
}

// dbTime is t as stored: UTC, truncated to the microsecond. pgx truncates
// too; doing it here makes the stored value explicit.
func dbTime(t time.Time) time.Time {
	return t.UTC().Truncate(time.Microsecond)
}

// nullTime maps the zero time, meaning "not decided", to NULL.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	v := dbTime(t)
	return &v
}

// fromNullTime maps NULL back to the zero time.
func fromNullTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}
