package testenv

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"
)

// RedisServer is a Redis server of one test's own, which the test may stop
// and start again without disturbing the tests that share the common one.
// Get one with PrivateRedis.
//
// It is redis-server from the machine's packages (what scripts/services.sh
// runs for the shared server), without persistence: a restart starts it
// empty, as a Redis that lost its data does.
type RedisServer struct {
	bin  string
	dir  string
	port int

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
}

// redisReadyTimeout bounds a start, and the wait until the server answers.
const redisReadyTimeout = 30 * time.Second

// PrivateRedis starts a Redis server for this test alone and returns it
// once it answers; it is stopped when the test ends. When redis-server is
// not installed the test is skipped, or failed when CI is set.
func PrivateRedis(tb testing.TB) *RedisServer {
	tb.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		missing(tb, fmt.Errorf("private Redis server: %w", err))
	}
	s := &RedisServer{bin: bin, dir: tb.TempDir()}
	tb.Cleanup(func() {
		if err := s.stop(); err != nil {
			tb.Errorf("private Redis server: %v", err)
		}
	})
	var startErr error
	for range 3 { // the port may be taken between choosing and binding it
		if s.port, startErr = freePort(); startErr != nil {
			break
		}
		if startErr = s.start(); startErr == nil {
			break
		}
	}
	if startErr != nil {
		missing(tb, fmt.Errorf("private Redis server: %w", startErr))
	}
	return s
}

// URL is the server's redis:// URL.
func (s *RedisServer) URL() string { return fmt.Sprintf("redis://127.0.0.1:%d/0", s.port) }

// Stop stops the server and returns once it is down: every connection is
// then broken and every new one refused.
func (s *RedisServer) Stop(tb testing.TB) {
	tb.Helper()
	if err := s.stop(); err != nil {
		tb.Fatalf("private Redis server: %v", err)
	}
}

// Start starts the stopped server again, on the same port, and returns
// once it answers.
func (s *RedisServer) Start(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatalf("private Redis server: %v", err)
	}
}

func (s *RedisServer) start() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	log, err := os.OpenFile(filepath.Join(s.dir, "redis.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	cmd := exec.Command(s.bin, "--port", strconv.Itoa(s.port), "--bind", "127.0.0.1",
		"--save", "", "--appendonly", "no", "--dir", s.dir)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return err
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); log.Close(); close(done) }()
	s.cmd, s.done = cmd, done
	for end := time.Now().Add(redisReadyTimeout); ; {
		if answers(s.port) {
			return nil
		}
		select {
		case <-done:
			s.cmd = nil
			b, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			return fmt.Errorf("redis-server exited at start:\n%s", b)
		default:
		}
		if time.Now().After(end) {
			return errors.New("redis-server does not answer")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// answers reports whether a Redis server on port answers PING.
func answers(port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
	if err != nil {
		return false
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return false
	}
	buf := make([]byte, 7)
	n, _ := c.Read(buf)
	return string(buf[:n]) == "+PONG\r\n"
}

func (s *RedisServer) stop() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd == nil {
		return nil
	}
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(redisReadyTimeout):
		_ = s.cmd.Process.Kill()
		<-s.done
	}
	s.cmd = nil
	return nil
}
