package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
	"github.com/authworker/authworker/testenv"
)

// openDB opens a fresh, migrated database for the test and returns it with
// its URL.
func openDB(tb testing.TB) (*postgres.DB, string) {
	tb.Helper()
	dbURL := testenv.Database(tb)
	ctx := context.Background()
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, MaxConns: 4})
	if err != nil {
		tb.Fatalf("Open: %v", err)
	}
	tb.Cleanup(db.Close)
	if err := db.Migrate(ctx); err != nil {
		tb.Fatalf("Migrate: %v", err)
	}
	return db, dbURL
}

// connect opens a plain connection for looking behind the adapters.
func connect(tb testing.TB, dbURL string) *pgx.Conn {
	tb.Helper()
	conn, err := pgx.Connect(context.Background(), dbURL)
	if err != nil {
		tb.Fatalf("connect: %v", err)
	}
	tb.Cleanup(func() { _ = conn.Close(context.Background()) })
	return conn
}

const secret = "s3cret-pw"

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     postgres.Config
		wantErr bool
	}{
		{"OK", postgres.Config{URL: "postgres://ada:" + secret + "@db.example.com:5432/authworker?sslmode=verify-full"}, false},
		{"KeywordValue", postgres.Config{URL: "host=db.example.com user=ada password=" + secret + " dbname=authworker"}, false},
		{"ZeroMeansDefaults", postgres.Config{URL: "postgres://db.example.com/authworker", MaxConns: 0, ConnectTimeout: 0}, false},
		{"MissingURL", postgres.Config{}, true},
		{"BadPort", postgres.Config{URL: "postgres://ada:" + secret + "@db.example.com:port/authworker"}, true},
		{"BadOption", postgres.Config{URL: "postgres://ada:" + secret + "@db.example.com/authworker?sslmode=sometimes"}, true},
		{"BadKeywordValue", postgres.Config{URL: "host=db.example.com password=" + secret + " sslmode=sometimes"}, true},
		{"NegativeMaxConns", postgres.Config{URL: "postgres://db.example.com/authworker", MaxConns: -1}, true},
		{"NegativeConnectTimeout", postgres.Config{URL: "postgres://db.example.com/authworker", ConnectTimeout: -time.Second}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			if (err != nil) != tt.wantErr {
				t.Fatalf("Validate() = %v, want error %v", err, tt.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("Validate() = %q, which reveals the password", err)
			}
		})
	}
}

func TestConfigStringHidesPassword(t *testing.T) {
	cfg := postgres.Config{URL: "postgres://ada:" + secret + "@db.example.com:5432/authworker?password=" + secret + "&sslmode=disable"}
	got := cfg.String()
	if strings.Contains(got, secret) {
		t.Errorf("String() = %q, which reveals the password", got)
	}
	if !strings.Contains(got, "postgres://ada@db.example.com:5432/authworker") {
		t.Errorf("String() = %q, want it to name user, host and database", got)
	}
}

func TestOpenUnreachable(t *testing.T) {
	t.Parallel()
	// A port that was just free: nothing listens there.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	_ = l.Close()

	_, err = postgres.Open(context.Background(), postgres.Config{
		URL:            "postgres://ada:" + secret + "@" + addr + "/authworker?sslmode=disable",
		ConnectTimeout: 2 * time.Second,
	})
	if got := domain.ErrorCode(err); got != domain.CodeUnavailable {
		t.Errorf("Open error %v has code %q, want unavailable", err, got)
	}
	if err != nil && strings.Contains(err.Error(), secret) {
		t.Errorf("Open error %q reveals the password", err)
	}
}

func TestCloseTwice(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	if err := db.Ping(context.Background()); err != nil {
		t.Fatalf("Ping: %v", err)
	}
	db.Close()
	db.Close()
	if err := db.Ping(context.Background()); domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("Ping after Close = %v, want unavailable", err)
	}
	_, err := postgres.NewUserRepository(db).UserByEmail(context.Background(), "ada@example.com")
	if domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("UserByEmail after Close = %v, want unavailable", err)
	}
}

var tables = []string{"users", "sessions", "refresh_tokens", "signing_keys", "request_outcomes", "one_time_codes", "outbox"}

// migrations is how many migrations are embedded.
const migrations = 6

// checkSchema reports an error unless every table exists and each
// migration was recorded once.
func checkSchema(tb testing.TB, conn *pgx.Conn) {
	tb.Helper()
	ctx := context.Background()
	for _, table := range tables {
		var exists bool
		if err := conn.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, "public."+table).Scan(&exists); err != nil {
			tb.Fatal(err)
		}
		if !exists {
			tb.Errorf("table %s missing after Migrate", table)
		}
	}
	for version := 1; version <= migrations; version++ {
		var applied int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM goose_db_version WHERE version_id = $1 AND is_applied`, version).Scan(&applied); err != nil {
			tb.Fatal(err)
		}
		if applied != 1 {
			tb.Errorf("migration %d recorded %d times, want 1", version, applied)
		}
	}
}

func TestMigrate(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	dbURL := testenv.Database(t)
	conn := connect(t, dbURL)
	db, err := postgres.Open(ctx, postgres.Config{URL: dbURL})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate on an empty database: %v", err)
	}
	checkSchema(t, conn)
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate again: %v", err)
	}
	checkSchema(t, conn)

	// A newer release has migrated further; this one still starts.
	if _, err := conn.Exec(ctx, `INSERT INTO goose_db_version (version_id, is_applied) VALUES (99999999999999, true)`); err != nil {
		t.Fatal(err)
	}
	if err := db.Migrate(ctx); err != nil {
		t.Errorf("Migrate on a database migrated by a newer release: %v", err)
	}
}

// TestMigrateConcurrent starts several workers on one empty database at
// once: the session lock lets one migrate while the others wait.
func TestMigrateConcurrent(t *testing.T) {
	t.Parallel()
	const workers = 3
	ctx := context.Background()
	dbURL := testenv.Database(t)
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for range workers {
		db, err := postgres.Open(ctx, postgres.Config{URL: dbURL, MaxConns: 2})
		if err != nil {
			t.Fatal(err)
		}
		defer db.Close()
		wg.Go(func() { errs <- db.Migrate(ctx) })
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Migrate: %v", err)
		}
	}
	checkSchema(t, connect(t, dbURL))
}

// TestUnavailable checks the translation of losing the server: the
// connection cut (here by a proxy standing for the network) and the backend
// terminated by the server.
func TestUnavailable(t *testing.T) {
	t.Parallel()
	ctx := context.Background()

	t.Run("ServerGone", func(t *testing.T) {
		t.Parallel()
		_, dbURL := openDB(t)
		u, err := url.Parse(dbURL)
		if err != nil {
			t.Fatal(err)
		}
		p := startProxy(t, u.Host)
		u.Host = p.addr()
		db, err := postgres.Open(ctx, postgres.Config{URL: u.String(), ConnectTimeout: 2 * time.Second})
		if err != nil {
			t.Fatalf("Open through the proxy: %v", err)
		}
		defer db.Close()
		users := postgres.NewUserRepository(db)
		if _, err := users.UserByEmail(ctx, "ada@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("UserByEmail before the cut = %v, want not found", err)
		}

		p.close()
		if _, err := users.UserByEmail(ctx, "ada@example.com"); domain.ErrorCode(err) != domain.CodeUnavailable {
			t.Errorf("UserByEmail = %v, want unavailable", err)
		} else if got, want := domain.ErrorMessage(err), "user store unavailable"; got != want {
			t.Errorf("message = %q, want %q", got, want)
		}
		checkAllUnavailable(t, db)
	})

	t.Run("BackendTerminated", func(t *testing.T) {
		t.Parallel()
		db, dbURL := openDB(t)
		users := postgres.NewUserRepository(db)
		if _, err := users.UserByEmail(ctx, "ada@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Fatalf("UserByEmail = %v, want not found", err)
		}
		conn := connect(t, dbURL)
		if _, err := conn.Exec(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE datname = current_database() AND pid <> pg_backend_pid()`); err != nil {
			t.Fatal(err)
		}
		// The pool's idle connection is dead; the call that finds out fails
		// as unavailable, and the pool dials anew for the next.
		_, err := users.UserByEmail(ctx, "ada@example.com")
		if code := domain.ErrorCode(err); code != domain.CodeUnavailable && code != domain.CodeNotFound {
			t.Errorf("UserByEmail after termination = %v, want unavailable (or not found after a reconnect)", err)
		}
		if _, err := users.UserByEmail(ctx, "ada@example.com"); domain.ErrorCode(err) != domain.CodeNotFound {
			t.Errorf("UserByEmail after reconnecting = %v, want not found", err)
		}
	})
}

// checkAllUnavailable calls every repository method on a db whose server
// is gone.
func checkAllUnavailable(t *testing.T, db *postgres.DB) {
	t.Helper()
	ctx := context.Background()
	now := time.Now()
	u, err := domain.NewUser("0c4b9a0e-6a4f-4f7e-9b1e-2a7d3c1f5e60", "ada@example.com", "hash", now)
	if err != nil {
		t.Fatal(err)
	}
	s, err := domain.NewSession("6f1d2c3b-4a59-4e68-9d7c-8b0a1f2e3d4c", u.ID(), domain.Client{ID: "web"}, now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	tok := domain.RefreshToken{Hash: make([]byte, 32), SessionID: s.ID(), CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	users, sessions, keys := postgres.NewUserRepository(db), postgres.NewSessionRepository(db), postgres.NewSigningKeyRepository(db)
	outcomes := postgres.NewOutcomeRepository(db)
	o := storagetest.NewOutcome("web")
	_, keysErr := keys.SigningKeys(ctx, now)
	_, outcomeErr := outcomes.Outcome(ctx, o.Key, now)
	_, deleteErr := outcomes.DeleteExpiredOutcomes(ctx, now, 10)
	called := false
	for name, err := range map[string]error{
		"Ping":                  db.Ping(ctx),
		"CreateUser":            users.CreateUser(ctx, u),
		"UpdateUser":            users.UpdateUser(ctx, u.ID(), func(*domain.User) error { return nil }),
		"CreateSession":         sessions.CreateSession(ctx, s, tok),
		"SigningKeys":           keysErr,
		"UpdateSigningKeys":     keys.UpdateSigningKeys(ctx, now, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) { return nil, nil }),
		"Outcome":               outcomeErr,
		"SaveOutcome":           outcomes.SaveOutcome(ctx, o),
		"DeleteExpiredOutcomes": deleteErr,
		"InTx":                  db.InTx(ctx, func(context.Context) error { called = true; return nil }),
	} {
		if got := domain.ErrorCode(err); got != domain.CodeUnavailable {
			t.Errorf("%s = %v, want unavailable", name, err)
		}
	}
	if called {
		t.Error("InTx called fn without a transaction")
	}
	if err := db.Migrate(ctx); err == nil {
		t.Error("Migrate succeeded without a server")
	}
}

// proxy forwards TCP connections to a target until closed, standing for a
// network path that can be cut.
type proxy struct {
	ln     net.Listener
	target string

	mu     sync.Mutex
	conns  []net.Conn
	closed bool
}

func startProxy(tb testing.TB, target string) *proxy {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	p := &proxy{ln: ln, target: target}
	go p.serve()
	tb.Cleanup(p.close)
	return p
}

func (p *proxy) addr() string { return p.ln.Addr().String() }

func (p *proxy) serve() {
	for {
		client, err := p.ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = client.Close()
			continue
		}
		if !p.track(client, server) {
			return
		}
		go func() { _, _ = io.Copy(server, client); _ = server.Close() }()
		go func() { _, _ = io.Copy(client, server); _ = client.Close() }()
	}
}

func (p *proxy) track(cs ...net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		for _, c := range cs {
			_ = c.Close()
		}
		return false
	}
	p.conns = append(p.conns, cs...)
	return true
}

// close stops accepting and cuts every forwarded connection.
func (p *proxy) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return
	}
	p.closed = true
	_ = p.ln.Close()
	for _, c := range p.conns {
		_ = c.Close()
	}
}

func TestErrorsKeepTheCause(t *testing.T) {
	t.Parallel()
	db, _ := openDB(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Nanosecond)
	defer cancel()
	<-ctx.Done()
	_, err := postgres.NewUserRepository(db).UserByEmail(ctx, "ada@example.com")
	if !errors.Is(err, context.DeadlineExceeded) || domain.ErrorCode(err) != domain.CodeUnavailable {
		t.Errorf("UserByEmail past the deadline = %v, want unavailable wrapping context.DeadlineExceeded", err)
	}
}
