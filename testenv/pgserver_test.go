package testenv

import (
	"context"
	"testing"

	"github.com/jackc/pgx/v5"
)

// TestPrivatePostgresRestarts: what a test writes to its own server is
// there after a restart and after a crash, and while the server is down
// nothing connects.
func TestPrivatePostgresRestarts(t *testing.T) {
	t.Parallel()
	s := PrivatePostgres(t)
	ctx := context.Background()
	exec := func(sql string, args ...any) {
		t.Helper()
		conn, err := pgx.Connect(ctx, s.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, sql, args...); err != nil {
			t.Fatal(err)
		}
	}
	count := func() (n int) {
		t.Helper()
		conn, err := pgx.Connect(ctx, s.URL())
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM t`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}

	exec(`CREATE TABLE t (i int)`)
	exec(`INSERT INTO t VALUES (1)`)
	held, err := pgx.Connect(ctx, s.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close(ctx)

	s.Restart(t)
	if err := held.Ping(ctx); err == nil {
		t.Error("a connection from before the restart still works")
	}
	exec(`INSERT INTO t VALUES (2)`)

	s.Stop(t, Immediate)
	if conn, err := pgx.Connect(ctx, s.URL()); err == nil {
		conn.Close(ctx)
		t.Fatal("connected to the stopped server")
	}
	s.Start(t)
	if n := count(); n != 2 {
		t.Errorf("%d rows after a restart and a crash, want 2", n)
	}
}

func TestCompareVersions(t *testing.T) {
	for _, c := range []struct {
		a, b string
		want int
	}{{"15", "15", 0}, {"9.6", "15", -1}, {"17", "15", 1}, {"10", "9.6", 1}, {"15", "15.1", -1}} {
		if got := compareVersions(c.a, c.b); got != c.want {
			t.Errorf("compareVersions(%q, %q) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}
