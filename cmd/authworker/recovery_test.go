package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/testenv"
)

func TestDefaultInstanceID(t *testing.T) {
	host := func() (string, error) { return "worker-0.auth", nil }
	tests := []struct {
		name     string
		hostname func() (string, error)
		addr     string
		want     string
	}{
		{"HostAndPort", host, ":8080", "worker-0.auth-8080"},
		{"LoopbackAddress", host, "127.0.0.1:9000", "worker-0.auth-9000"},
		{"PortDrawnAtStart", host, "127.0.0.1:0", ""},
		{"NoHostname", func() (string, error) { return "", errors.New("no hostname") }, ":8080", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := defaultInstanceID(tt.hostname, tt.addr); got != tt.want {
				t.Errorf("defaultInstanceID(%q) = %q, want %q", tt.addr, got, tt.want)
			}
		})
	}
}

func TestInstanceIDSetting(t *testing.T) {
	kek := "AUTH_KEY_ENCRYPTION_KEY=" + kekOf(1)
	cfg, err := LoadConfig([]string{kek, "AUTH_INSTANCE_ID=auth-2"})
	if err != nil || cfg.Pool.InstanceID != "auth-2" {
		t.Errorf("AUTH_INSTANCE_ID=auth-2: instance id %q, error %v", cfg.Pool.InstanceID, err)
	}
	if _, err := LoadConfig([]string{kek, "AUTH_INSTANCE_ID=auth:2"}); err == nil || !strings.Contains(err.Error(), "AUTH_INSTANCE_ID") {
		t.Errorf("AUTH_INSTANCE_ID=auth:2: error %v, want one naming AUTH_INSTANCE_ID", err)
	}
}

// crashRun is what a SIGKILL under load cost, seen from outside.
type crashRun struct {
	// firstReply is how long the first request sent after the restart
	// waited for its reply.
	firstReply time.Duration
	// replayed is how many replies went out again for one delivery: the
	// requests handled since the last offset commit before the kill, read
	// again by the restarted worker and answered from their stored
	// outcomes.
	replayed int
	// stopped is how long the first worker took to exit after the signal.
	stopped time.Duration
	// slowest is the longest any request waited for its reply, from its
	// first sending.
	slowest time.Duration
}

// crashUnderLoad runs a worker with extra settings under a light load of
// registrations (10 a second, keyed over every partition), kills it with
// SIGKILL once 60 are answered, and starts it again at once with the same
// settings, the same HTTP port and so the same instance id. It checks that
// every request got one logical reply and each account was created once.
func crashUnderLoad(t *testing.T, extra ...string) crashRun {
	return restartUnderLoad(t, syscall.SIGKILL, extra...)
}

// restartUnderLoad is crashUnderLoad stopping the first worker with sig.
func restartUnderLoad(t *testing.T, sig syscall.Signal, extra ...string) crashRun {
	const killAfter = 60 // some 6 s of load: beyond a commit at librdkafka's default 5 s
	pw := newProcessWorker(t, extra...)
	first := pw.start(t)
	waitFor(t, "the worker to be ready", func() bool { return ready(pw.httpAddr) })
	c := pw.newClient(t, 0)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	// Longer than any outage here: every request is sent once, so a
	// reply that went out twice is a redelivery.
	k := &caller{c: c, perAttempt: 2 * time.Minute, ops: map[string]string{}}
	var (
		mu     sync.Mutex
		emails []string
		wg     sync.WaitGroup
	)
	register := func() error {
		email := testenv.Unique("crash") + "@example.com"
		mu.Lock()
		emails = append(emails, email)
		mu.Unlock()
		return k.call(ctx, "register", func(ctx context.Context, id client.RequestOption) error {
			_, err := c.Register(ctx, email, password, id)
			return err
		})
	}
	stop := make(chan struct{})
	wg.Go(func() {
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			wg.Go(func() {
				if err := register(); err != nil {
					t.Errorf("register: %v", err)
				}
			})
		}
	})
	waitFor(t, "60 registrations answered", func() bool { return k.answered.Load() >= killAfter })
	stopping := time.Now()
	first.stop(t, sig)
	stopped := time.Since(stopping)
	second := pw.start(t)
	start := time.Now()
	if err := register(); err != nil {
		t.Fatalf("the first request after the restart: %v", err)
	}
	run := crashRun{firstReply: time.Since(start), stopped: stopped}
	time.Sleep(3 * time.Second)
	close(stop)
	wg.Wait()
	second.stop(t, syscall.SIGTERM)
	if t.Failed() {
		t.FailNow()
	}

	replayed, retried, _ := checkOneLogicalReply(t, k.ops, repliesByRequest(t, pw.bootstrap, pw.reply))
	// Callers ask again after a refusal by the hash slots, or after five
	// seconds without a reply: a figure of the machine's load, not a
	// property to assert.
	t.Logf("%d requests were sent again by their callers", retried)
	run.replayed = replayed
	run.slowest = time.Duration(k.slowest.Load())
	conn, err := pgx.Connect(ctx, pw.dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var accounts int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM users WHERE email = ANY($1)`, emails).Scan(&accounts); err != nil {
		t.Fatal(err)
	}
	if accounts != len(emails) {
		t.Errorf("%d accounts for %d registrations", accounts, len(emails))
	}
	t.Logf("%d registrations, %d answered before the signal (%v); the worker exited %v after it; the first request after the restart answered in %v; the slowest reply took %v; %d replies went out again",
		len(emails), killAfter, sig, run.stopped.Round(time.Millisecond), run.firstReply.Round(time.Millisecond), run.slowest.Round(time.Millisecond), replayed)
	return run
}

// TestStaticMemberBackAfterSIGKILL: a worker killed under load and started
// again with the same instance id takes its partitions back at once,
// without waiting for its old session to time out: the first request sent
// after the restart is answered well within the session timeout (30 s
// here, so that a dynamic member's wait would be unmistakable), and
// nothing is lost or done twice.
func TestStaticMemberBackAfterSIGKILL(t *testing.T) {
	const session = 30 * time.Second
	run := crashUnderLoad(t, fmt.Sprintf("KAFKA_SESSION_TIMEOUT_MS=%d", session.Milliseconds()))
	if run.firstReply >= session/2 {
		t.Errorf("the first request after the restart waited %v: the partitions waited for the old session (%v) to end", run.firstReply, session)
	}
}

// TestGracefulRestartUnderLoad: a worker stopped with SIGTERM under load
// and started again with the same instance id finishes what it holds,
// commits, and exits; the new one takes the partitions back at once (a
// static member leaves no group on shutdown), so the first request sent
// after the restart is answered well within the session timeout, and
// nothing is lost or done twice. It logs the figures of the README's
// Delivery section.
func TestGracefulRestartUnderLoad(t *testing.T) {
	const session = 30 * time.Second
	run := restartUnderLoad(t, syscall.SIGTERM, fmt.Sprintf("KAFKA_SESSION_TIMEOUT_MS=%d", session.Milliseconds()))
	if run.firstReply >= session/2 {
		t.Errorf("the first request after the restart waited %v: the partitions waited for the old session (%v) to end", run.firstReply, session)
	}
}

// TestCrashReplays measures how many requests a SIGKILL makes the
// restarted worker answer again from their stored outcomes, with offsets
// committed every second (the default) and every 5 s (librdkafka's). It
// logs the figures; crashUnderLoad checks that each is one logical reply.
func TestCrashReplays(t *testing.T) {
	for _, tt := range []struct{ name, interval string }{{"Every1s", ""}, {"Every5s", "5000"}} {
		t.Run(tt.name, func(t *testing.T) {
			var extra []string
			if tt.interval != "" {
				extra = append(extra, "KAFKA_AUTO_COMMIT_INTERVAL_MS="+tt.interval)
			}
			run := crashUnderLoad(t, extra...)
			t.Logf("commit interval %s: %d replies went out again after the kill", tt.name, run.replayed)
		})
	}
}

// readyz returns the status of the worker at addr's /readyz and its
// checks, or 0 when it does not answer.
func readyz(addr string) (int, map[string]string) {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return 0, nil
	}
	defer resp.Body.Close()
	var body struct{ Checks map[string]string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	return resp.StatusCode, body.Checks
}

// TestReadyzWaitsForAssignment: a worker is ready only once the group has
// given it its partitions. A static member killed with SIGKILL holds its
// partitions for its session timeout; a worker started meanwhile under
// another instance id answers /readyz 503, naming the consumer while the
// stores answer, until the group gives up the dead member and assigns the
// partitions to it; then 200.
func TestReadyzWaitsForAssignment(t *testing.T) {
	const session = 8 * time.Second
	pw := newProcessWorker(t, fmt.Sprintf("KAFKA_SESSION_TIMEOUT_MS=%d", session.Milliseconds()))
	first := pw.start(t)
	waitFor(t, "the first worker to be ready", func() bool { return ready(pw.httpAddr) })
	first.stop(t, syscall.SIGKILL)

	addr := freeAddr(t)
	start := time.Now()
	pw.start(t, "HTTP_ADDR="+addr)
	var unready map[string]string
	deadline := start.Add(2 * time.Minute)
	for {
		status, checks := readyz(addr)
		if status == http.StatusServiceUnavailable && checks["consumer"] == "unavailable" && unready == nil {
			unready = checks
		}
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz = %d %v two minutes after start", status, checks)
		}
		time.Sleep(20 * time.Millisecond)
	}
	took := time.Since(start)
	if unready == nil {
		t.Fatalf("/readyz was never 503 for the consumer before the dead member's session (%v) ended: ready after %v", session, took)
	}
	for _, store := range []string{"postgres", "redis", "kafka"} {
		if unready[store] != "ok" {
			t.Errorf("while waiting for an assignment, /readyz said %s: %q, want ok", store, unready[store])
		}
	}
	t.Logf("ready %v after start, the dead static member's session being %v", took.Round(10*time.Millisecond), session)
}
