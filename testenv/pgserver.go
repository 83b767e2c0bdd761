package testenv

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// PostgresServer is a PostgreSQL server of one test's own, which the test
// may stop, crash and restart without disturbing the tests that share the
// common server. Get one with PrivatePostgres.
//
// It is a throwaway cluster in the test's temporary directory, run by the
// PostgreSQL binaries installed on the machine (the Debian packages that
// scripts/services.sh installs for the shared server): no container, so a
// restart is a real one, and takes well under a second.
type PostgresServer struct {
	url     string
	bin     string // directory of initdb, pg_ctl and postgres
	dir     string // the test's directory: data/, server.log, pg_ctl.log
	sockDir string
	port    int
	runAs   *user.User // nil: this process's user
}

// ShutdownMode is how PostgresServer.Stop stops the server, as pg_ctl's
// -m option.
type ShutdownMode string

const (
	// Fast disconnects the clients, checkpoints and exits: a restart by
	// an operator.
	Fast ShutdownMode = "fast"
	// Immediate kills the server without a checkpoint, as a crash would;
	// the next start recovers from the WAL.
	Immediate ShutdownMode = "immediate"
)

// pgReadyTimeout bounds a start, and the wait until the server accepts
// connections.
const pgReadyTimeout = 60 * time.Second

// PrivatePostgres starts a PostgreSQL server for this test alone and
// returns it once it accepts connections; it is stopped, and its files
// removed, when the test ends. Connect with URL: the superuser postgres,
// trusted on the loopback interface, and the database postgres.
//
// The binaries are looked for where the Debian packages put them (the
// newest /usr/lib/postgresql/*/bin, the version scripts/services.sh runs),
// then in `pg_config --bindir`, then on PATH. initdb refuses to run as
// root: when the test runs as root, as it may in CI, the server is run as
// the postgres system user instead, as scripts/services.sh runs the shared
// one.
//
// When the server cannot be had (no binaries, no postgres user to run it
// as root, a start that fails) the test is skipped, or failed when CI is
// set, as for the shared services.
func PrivatePostgres(tb testing.TB) *PostgresServer {
	tb.Helper()
	s, err := newPostgresServer(tb)
	if err != nil {
		missing(tb, fmt.Errorf("private PostgreSQL server: %w", err))
	}
	tb.Cleanup(func() {
		if err := s.stop(Fast); err != nil {
			tb.Logf("private PostgreSQL server: %v; stopping it at once", err)
			if err := s.stop(Immediate); err != nil {
				tb.Errorf("private PostgreSQL server left running: %v", err)
			}
		}
	})
	var startErr error
	// The port is free when chosen, but another process may take it before
	// the server binds it: a fresh one is tried then.
	for range 3 {
		if s.port, startErr = freePort(); startErr != nil {
			break
		}
		s.url = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", s.port)
		if startErr = s.start(); startErr == nil || !strings.Contains(s.logTail(), "could not bind") {
			break
		}
	}
	if startErr != nil {
		missing(tb, fmt.Errorf("private PostgreSQL server: %w", startErr))
	}
	return s
}

// URL is the server's connection URL, for the superuser.
func (s *PostgresServer) URL() string { return s.url }

// Restart stops the server as an operator would (Fast) and starts it
// again, on the same port, returning once it accepts connections.
func (s *PostgresServer) Restart(tb testing.TB) {
	tb.Helper()
	s.Stop(tb, Fast)
	s.Start(tb)
}

// Stop stops the server, in mode, and returns once it is down: every
// connection is then broken and every new one refused.
func (s *PostgresServer) Stop(tb testing.TB, mode ShutdownMode) {
	tb.Helper()
	if err := s.stop(mode); err != nil {
		tb.Fatalf("private PostgreSQL server: %v", err)
	}
}

// Start starts the stopped server again and returns once it accepts
// connections.
func (s *PostgresServer) Start(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatalf("private PostgreSQL server: %v", err)
	}
}

// newPostgresServer finds the binaries and creates the cluster.
func newPostgresServer(tb testing.TB) (*PostgresServer, error) {
	bin, err := pgBinDir()
	if err != nil {
		return nil, err
	}
	s := &PostgresServer{bin: bin, dir: tb.TempDir()}
	if os.Geteuid() == 0 {
		if s.runAs, err = user.Lookup("postgres"); err != nil {
			return nil, fmt.Errorf("running as root, which initdb refuses, and there is no postgres user to run the server as: %w", err)
		}
		if err := s.grantDir(); err != nil {
			return nil, err
		}
	}
	// A Unix socket's path is limited to about 100 bytes, which a long
	// test name can exceed within the test's directory.
	s.sockDir = filepath.Join(s.dir, "sock")
	if len(s.sockDir)+len("/.s.PGSQL.65535.lock") > 100 {
		short, err := os.MkdirTemp("", "pgsock")
		if err != nil {
			return nil, err
		}
		tb.Cleanup(func() { _ = os.RemoveAll(short) })
		s.sockDir = short
	} else if err := os.Mkdir(s.sockDir, 0o700); err != nil {
		return nil, err
	}
	if err := s.chown(s.sockDir); err != nil {
		return nil, err
	}

	data := filepath.Join(s.dir, "data")
	if err := s.run("initdb", "-D", data, "-U", "postgres", "-E", "UTF8", "--locale=C",
		"--auth-local=trust", "--auth-host=trust", "--no-sync", "--no-instructions"); err != nil {
		return nil, err
	}
	// Durability against a crash of the machine is not wanted here: a
	// crash of the server alone loses nothing committed with fsync off,
	// since the WAL it wrote is in the kernel's cache.
	conf := fmt.Sprintf(`
listen_addresses = '127.0.0.1'
unix_socket_directories = '%s'
fsync = off
full_page_writes = off
shared_buffers = 32MB
max_connections = 100
logging_collector = off
log_min_messages = warning
`, s.sockDir)
	f, err := os.OpenFile(filepath.Join(data, "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return nil, err
	}
	_, err = f.WriteString(conf)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return s, err
}

// start starts the server on s.port and waits until it accepts
// connections.
func (s *PostgresServer) start() error {
	if err := s.run("pg_ctl", "start", "-D", filepath.Join(s.dir, "data"), "-l", filepath.Join(s.dir, "server.log"),
		"-o", "-p "+strconv.Itoa(s.port), "-w", "-t", strconv.Itoa(int(pgReadyTimeout.Seconds()))); err != nil {
		return fmt.Errorf("%w\nserver log:\n%s", err, s.logTail())
	}
	ctx, cancel := context.WithTimeout(context.Background(), pgReadyTimeout)
	defer cancel()
	for {
		conn, err := pgx.Connect(ctx, s.url)
		if err == nil {
			err = conn.Ping(ctx)
			_ = conn.Close(ctx)
			if err == nil {
				return nil
			}
		}
		if ctx.Err() != nil {
			return fmt.Errorf("started, but does not accept connections on %s: %w\nserver log:\n%s", s.url, err, s.logTail())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stop stops the server, if it runs, and waits until it is down.
func (s *PostgresServer) stop(mode ShutdownMode) error {
	data := filepath.Join(s.dir, "data")
	if _, err := os.Stat(filepath.Join(data, "postmaster.pid")); errors.Is(err, os.ErrNotExist) {
		return nil // never started, or stopped
	}
	return s.run("pg_ctl", "stop", "-D", data, "-m", string(mode), "-w", "-t", "60")
}

// run runs one of the server's programs, as the server's user, and returns
// its output in the error when it fails.
func (s *PostgresServer) run(program string, args ...string) error {
	// The output goes to a file, not a pipe: pg_ctl leaves the server
	// running, which must not hold the test waiting for the pipe to close.
	out, err := os.CreateTemp(s.dir, program+"-*.log")
	if err != nil {
		return err
	}
	defer os.Remove(out.Name())
	defer out.Close()
	cmd := exec.Command(filepath.Join(s.bin, program), args...)
	cmd.Dir = s.dir // readable by the server's user, as its working directory must be
	cmd.Stdin, cmd.Stdout, cmd.Stderr = nil, out, out
	if s.runAs != nil {
		if err := runAs(cmd, s.runAs); err != nil {
			return err
		}
	}
	if err := cmd.Run(); err != nil {
		text, _ := os.ReadFile(out.Name())
		return fmt.Errorf("%s %s: %w\n%s", program, strings.Join(args, " "), err, bytes.TrimSpace(text))
	}
	return nil
}

// logTail returns the end of the server's log, for errors.
func (s *PostgresServer) logTail() string {
	b, err := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if err != nil {
		return "(no server log)"
	}
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	return strings.Join(lines[max(0, len(lines)-30):], "\n")
}

// grantDir hands the test's directory to the server's user. The testing
// package makes it, and the directory of the test's temporary directories
// above it, accessible to this process's user only: the latter is opened
// for traversal. Any directory further up must let the server's user
// through already.
func (s *PostgresServer) grantDir() error {
	if err := s.chown(s.dir); err != nil {
		return err
	}
	parent := filepath.Dir(s.dir)
	info, err := os.Stat(parent)
	if err != nil {
		return err
	}
	if err := os.Chmod(parent, info.Mode().Perm()|0o011); err != nil {
		return err
	}
	for dir := filepath.Dir(parent); ; dir = filepath.Dir(dir) {
		info, err := os.Stat(dir)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o001 == 0 {
			return fmt.Errorf("user %s, which runs the server, cannot reach %s (mode %v): point TMPDIR to a directory it can reach", s.runAs.Username, dir, info.Mode().Perm())
		}
		if dir == filepath.Dir(dir) {
			return nil
		}
	}
}

// chown gives path to the server's user, when it is not this process's.
func (s *PostgresServer) chown(path string) error {
	if s.runAs == nil {
		return nil
	}
	uid, err := strconv.Atoi(s.runAs.Uid)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(s.runAs.Gid)
	if err != nil {
		return err
	}
	return os.Chown(path, uid, gid)
}

// pgBinDir returns the directory of the PostgreSQL server's programs.
func pgBinDir() (string, error) {
	has := func(dir string) bool {
		for _, p := range []string{"initdb", "pg_ctl", "postgres"} {
			if info, err := os.Stat(filepath.Join(dir, p)); err != nil || info.IsDir() || info.Mode()&0o111 == 0 {
				return false
			}
		}
		return true
	}
	// Debian: /usr/lib/postgresql/<major>/bin, newest first, as
	// scripts/services.sh picks the version of the shared server.
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	slices.SortFunc(dirs, func(a, b string) int {
		return -compareVersions(filepath.Base(filepath.Dir(a)), filepath.Base(filepath.Dir(b)))
	})
	// pg_config may be libpq's alone, naming the directory of a server
	// that is not installed: every candidate is checked.
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		dirs = append(dirs, strings.TrimSpace(string(out)))
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if p, err := filepath.EvalSymlinks(p); err == nil {
			dirs = append(dirs, filepath.Dir(p))
		}
	}
	for _, dir := range dirs {
		if has(dir) {
			return dir, nil
		}
	}
	return "", errors.New("no PostgreSQL server programs (initdb, pg_ctl, postgres) in /usr/lib/postgresql/*/bin, `pg_config --bindir` or PATH: install the postgresql package (scripts/services.sh up does)")
}

// compareVersions compares dotted version numbers, such as 9.6 and 15.
func compareVersions(a, b string) int {
	as, bs := strings.Split(a, "."), strings.Split(b, ".")
	for i := range max(len(as), len(bs)) {
		var x, y int
		if i < len(as) {
			x, _ = strconv.Atoi(as[i])
		}
		if i < len(bs) {
			y, _ = strconv.Atoi(bs[i])
		}
		if c := cmp.Compare(x, y); c != 0 {
			return c
		}
	}
	return 0
}
