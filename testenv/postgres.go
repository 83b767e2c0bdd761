package testenv

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	tcpostgres "github.com/testcontainers/testcontainers-go/modules/postgres"
)

var postgresService = &service{
	envVar: "DATABASE_URL",
	start: func(ctx context.Context) (string, error) {
		c, err := tcpostgres.Run(ctx, "postgres:17-alpine",
			tcpostgres.WithDatabase("authworker"),
			tcpostgres.WithUsername("authworker"),
			tcpostgres.WithPassword("authworker"),
			tcpostgres.BasicWaitStrategies(),
		)
		if err != nil {
			return "", fmt.Errorf("start postgres container: %w", err)
		}
		return c.ConnectionString(ctx, "sslmode=disable")
	},
}

// PostgresURL returns the URL of the shared PostgreSQL server's main
// database. Most tests want Database instead.
func PostgresURL(tb testing.TB) string {
	tb.Helper()
	return postgresService.resolve(tb)
}

// Database creates an empty database for this test and returns its URL. The
// database is dropped when the test ends.
func Database(tb testing.TB) string {
	tb.Helper()
	base := PostgresURL(tb)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	conn, err := pgx.Connect(ctx, base)
	if err != nil {
		missing(tb, fmt.Errorf("connect to %s: %w", redactURL(base), err))
	}
	defer conn.Close(ctx)

	name := Name(tb, "test")
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		tb.Fatalf("create test database: %v", err)
	}
	tb.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, base)
		if err != nil {
			tb.Errorf("drop test database: %v", err)
			return
		}
		defer conn.Close(ctx)
		if err := dropDatabase(ctx, conn, name); err != nil {
			tb.Errorf("drop test database: %v", err)
		}
	})

	u, err := url.Parse(base)
	if err != nil {
		tb.Fatalf("parse DATABASE_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// dropDatabase drops a test database. A plain DROP DATABASE stops an
// autovacuum worker that is busy in it, where WITH (FORCE) would need the
// right to signal the superuser's processes; it fails only while a session
// is still connected, which a test's pool may be for a moment after Close.
// So it is retried, and forced as a last resort.
func dropDatabase(ctx context.Context, conn *pgx.Conn, name string) error {
	const objectInUse = "55006"
	drop := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	for range 25 {
		_, err := conn.Exec(ctx, drop)
		if pgErr, ok := errors.AsType[*pgconn.PgError](err); !ok || pgErr.Code != objectInUse {
			return err
		}
		time.Sleep(200 * time.Millisecond)
	}
	_, err := conn.Exec(ctx, drop+" WITH (FORCE)")
	return err
}

// redactURL hides the password of a connection URL, for messages.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
