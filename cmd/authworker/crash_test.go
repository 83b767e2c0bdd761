package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// processEnv, when set, makes the test binary run the worker's main instead
// of the tests: how the crash tests get a worker they can SIGKILL.
const processEnv = "AUTHWORKER_TEST_PROCESS"

func TestMain(m *testing.M) {
	if os.Getenv(processEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// workerProcess is authworker running as a process of its own.
type workerProcess struct {
	cmd  *exec.Cmd
	done chan error
}

// startProcess runs the worker in a child process with env, its log in
// logPath.
func startProcess(t *testing.T, env []string, logPath string) *workerProcess {
	t.Helper()
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(append(os.Environ(), processEnv+"=1"), env...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &workerProcess{cmd: cmd, done: make(chan error, 1)}
	go func() { p.done <- cmd.Wait(); logFile.Close() }()
	t.Cleanup(func() { p.stop(t, syscall.SIGKILL) })
	return p
}

// stop sends sig and waits for the process to end.
func (p *workerProcess) stop(t *testing.T, sig syscall.Signal) {
	t.Helper()
	if p.cmd.ProcessState != nil {
		return
	}
	_ = p.cmd.Process.Signal(sig)
	select {
	case <-p.done:
	case <-time.After(30 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Errorf("worker did not stop on %v within 30 s", sig)
	}
}

// TestEventsSurviveSIGKILL: a worker is killed with SIGKILL while a few
// thousand refreshes are in flight, and started again. Every caller gets its
// answer, and auth.events holds exactly one event id per committed change,
// none for a change that did not commit, each user's in commit order;
// records published twice (the relay died between the broker's
// acknowledgement and the row's deletion) are the same id, and counted.
func TestEventsSurviveSIGKILL(t *testing.T) {
	const (
		users  = 40
		chain  = 75 // refreshes per user, one after the other: 3000 in all
		killAt = 1000
	)
	dbURL := testenv.Database(t)
	bootstrap := testenv.KafkaBootstrap(t)
	httpAddr := freeAddr(t)
	topics := map[string]string{
		"AUTH_REQUEST_TOPIC":       testenv.Name(t, "req"),
		"AUTH_RESPONSE_TOPIC":      testenv.Name(t, "resp"),
		"AUTH_DLQ_TOPIC":           testenv.Name(t, "dlq"),
		"AUTH_NOTIFICATIONS_TOPIC": testenv.Name(t, "notify"),
		"AUTH_EVENTS_TOPIC":        testenv.Name(t, "events"),
	}
	env := []string{
		"DATABASE_URL=" + dbURL,
		"REDIS_URL=" + testenv.RedisURL(t),
		"KAFKA_BOOTSTRAP_SERVERS=" + bootstrap,
		// The killed worker's partitions go to the new one once the group
		// gives it up for dead: the broker's least session timeout.
		"KAFKA_SESSION_TIMEOUT_MS=6000",
		"HTTP_ADDR=" + httpAddr,
		"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"AUTH_ISSUER=https://auth.test",
		"AUTH_AUDIENCE=api",
		"AUTH_REPLY_TOPICS=" + topics["AUTH_RESPONSE_TOPIC"],
		"AUTH_CONSUMER_GROUP=" + testenv.Name(t, "group"),
		"AUTH_TOPIC_PARTITIONS=3",
		"AUTH_WORKERS=32",
		"LOG_LEVEL=warn",
	}
	for k, v := range topics {
		env = append(env, k+"="+v)
	}
	t.Cleanup(func() {
		deleteTopics(t, bootstrap, slices.Collect(func(yield func(string) bool) {
			for _, v := range topics {
				if !yield(v) {
					return
				}
			}
		})...)
	})
	logPath := filepath.Join(t.TempDir(), "worker.log")
	defer func() {
		if t.Failed() {
			if b, err := os.ReadFile(logPath); err == nil {
				t.Logf("worker log:\n%s", b)
			}
		}
	}()
	first := startProcess(t, env, logPath)
	waitFor(t, "the worker to be ready", func() bool { return ready(httpAddr) })

	c, err := client.New(context.Background(), client.Config{
		BootstrapServers: bootstrap, ClientID: "web",
		RequestTopic: topics["AUTH_REQUEST_TOPIC"], ReplyTopic: topics["AUTH_RESPONSE_TOPIC"],
		Timeout: 2 * time.Minute,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	type account struct {
		userID, sessionID, refresh string
	}
	accounts := make([]account, users)
	var wg sync.WaitGroup
	// Eight users at a time, within what the hash slots and their queue
	// admit: a login refused RATE_LIMITED and read again after the kill
	// would run afresh (its reply is not stored), opening a session the
	// test does not expect. One refused anyway retries when told.
	admit := make(chan struct{}, 8)
	for i := range accounts {
		wg.Go(func() {
			admit <- struct{}{}
			defer func() { <-admit }()
			email := fmt.Sprintf("user%d@example.com", i)
			var reg *client.RegisterResult
			err := client.RetryRateLimited(ctx, func() (err error) {
				reg, err = c.Register(ctx, email, password)
				return err
			})
			if err != nil {
				t.Errorf("register %s: %v", email, err)
				return
			}
			var s *client.LoginResult
			err = client.RetryRateLimited(ctx, func() (err error) {
				s, err = c.Login(ctx, email, password)
				return err
			})
			if err != nil {
				t.Errorf("login %s: %v", email, err)
				return
			}
			accounts[i] = account{reg.UserID, s.SessionID, s.RefreshToken}
		})
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}

	var (
		answered atomic.Int64
		slowest  atomic.Int64 // ns
		killed   = make(chan struct{})
	)
	for i := range accounts {
		wg.Go(func() {
			token := accounts[i].refresh
			for range chain {
				start := time.Now()
				next, err := c.Refresh(ctx, token)
				if err != nil {
					t.Errorf("user %d: refresh: %v", i, err)
					return
				}
				took := time.Since(start)
				for {
					old := slowest.Load()
					if int64(took) <= old || slowest.CompareAndSwap(old, int64(took)) {
						break
					}
				}
				token = next.RefreshToken
				if answered.Add(1) == killAt {
					close(killed)
				}
			}
			if err := c.LogoutWithRefreshToken(ctx, token); err != nil {
				t.Errorf("user %d: logout: %v", i, err)
			}
		})
	}
	select {
	case <-killed:
	case <-ctx.Done():
		t.Fatal("the first worker never answered enough refreshes")
	}
	first.stop(t, syscall.SIGKILL)
	killedAt := answered.Load()
	second := startProcess(t, env, logPath)
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	t.Logf("killed after %d of %d refreshes answered; the slowest caller waited %v",
		killedAt, users*chain, time.Duration(slowest.Load()).Round(time.Millisecond))

	conn, err := pgx.Connect(ctx, dbURL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	waitFor(t, "the outbox to drain", func() bool {
		var n int
		return conn.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n) == nil && n == 0
	})
	second.stop(t, syscall.SIGTERM)
	// KAFKA_SESSION_TIMEOUT_MS is a consumer's property: given to the
	// consumer only, it makes librdkafka warn of nothing.
	if b, err := os.ReadFile(logPath); err != nil || bytes.Contains(b, []byte("CONFWARN")) {
		t.Errorf("the worker log (%v) has librdkafka's configuration warnings", err)
	}

	// What committed: each session's rotations are its refresh tokens but
	// the first.
	rotations := map[string]int{}
	rows, err := conn.Query(ctx, `SELECT session_id::text, count(*) - 1 FROM refresh_tokens GROUP BY session_id`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var sid string
		var n int
		if err := rows.Scan(&sid, &n); err != nil {
			t.Fatal(err)
		}
		rotations[sid] = n
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}

	recs := readTopicToEnd(t, bootstrap, topics["AUTH_EVENTS_TOPIC"])
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	type seen struct{ kinds []string }
	byUser := map[string]*seen{}
	refreshed := map[string]int{}
	ids := map[string]int{}
	var lastAt = map[string]time.Time{}
	for _, m := range recs {
		ev, err := codec.DecodeEvent(ctx, m.Value)
		if err != nil {
			t.Fatalf("partition %d offset %v: %v", m.TopicPartition.Partition, m.TopicPartition.Offset, err)
		}
		if got := string(headerValue(m, schemas.HeaderCEID)); got != ev.EventID {
			t.Fatalf("ce_id %q, value's eventId %q", got, ev.EventID)
		}
		ids[ev.EventID]++
		if ids[ev.EventID] > 1 {
			continue // a duplicate, as a consumer that deduplicates skips it
		}
		if _, ok := ev.Payload.(*schemas.SigningKeyRotated); ok {
			// The first worker's key: an event of no user, keyed by its id.
			if ev.UserID != nil || string(m.Key) != ev.EventID {
				t.Fatalf("key event %s keyed %q, user %v", ev.EventID, m.Key, ev.UserID)
			}
			continue
		}
		if ev.UserID == nil || string(m.Key) != *ev.UserID {
			t.Fatalf("event %s keyed %q, user %v", ev.EventID, m.Key, ev.UserID)
		}
		user := *ev.UserID
		if ev.OccurredAt.Before(lastAt[user]) {
			t.Errorf("user %s: %T at %v after an event at %v: out of order", user, ev.Payload, ev.OccurredAt, lastAt[user])
		}
		lastAt[user] = ev.OccurredAt
		if byUser[user] == nil {
			byUser[user] = &seen{}
		}
		kind := schemas.EventType(ev.Payload)
		byUser[user].kinds = append(byUser[user].kinds, kind)
		if p, ok := ev.Payload.(*schemas.SessionRefreshed); ok {
			refreshed[p.SessionID]++
		}
	}
	duplicates := len(recs) - len(ids)
	t.Logf("%d event records, %d distinct ids, %d duplicates", len(recs), len(ids), duplicates)

	for _, a := range accounts {
		if rotations[a.sessionID] != chain {
			t.Errorf("session %s: %d rotations committed, want %d (each refresh once)", a.sessionID, rotations[a.sessionID], chain)
		}
		if refreshed[a.sessionID] != rotations[a.sessionID] {
			t.Errorf("session %s: %d SessionRefreshed events for %d committed rotations", a.sessionID, refreshed[a.sessionID], rotations[a.sessionID])
		}
		want := []string{"authworker.UserRegistered", "authworker.LoginSucceeded"}
		for range chain {
			want = append(want, "authworker.SessionRefreshed")
		}
		want = append(want, "authworker.SessionRevoked")
		if s := byUser[a.userID]; s == nil || !slices.Equal(s.kinds, want) {
			var got []string
			if s != nil {
				got = s.kinds
			}
			t.Errorf("user %s: events %v, want registered, logged in, %d refreshes, revoked, in that order", a.userID, compact(got), chain)
		}
	}
	if len(byUser) != users {
		t.Errorf("events for %d users, want %d", len(byUser), users)
	}
}

// freeAddr returns a loopback address with a port free at the time.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// ready reports whether the worker at addr answers /readyz with 200.
func ready(addr string) bool {
	resp, err := http.Get("http://" + addr + "/readyz")
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}

// compact shortens a list of event types for a failure message.
func compact(kinds []string) string {
	var out []string
	for i := 0; i < len(kinds); {
		j := i
		for j < len(kinds) && kinds[j] == kinds[i] {
			j++
		}
		out = append(out, fmt.Sprintf("%s×%d", kinds[i], j-i))
		i = j
	}
	return fmt.Sprint(out)
}

// readTopicToEnd reads every partition of topic from its oldest record to
// its end as it is when the call starts.
func readTopicToEnd(t *testing.T, bootstrap, topic string) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": testenv.Name(t, "reader"), "enable.auto.commit": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		t.Fatal(err)
	}
	var assignment []kafka.TopicPartition
	ends := map[int32]int64{}
	for _, p := range md.Topics[topic].Partitions {
		low, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			t.Fatal(err)
		}
		if high > low {
			assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(low)})
			ends[p.ID] = high
		}
	}
	if err := c.Assign(assignment); err != nil {
		t.Fatal(err)
	}
	var recs []*kafka.Message
	deadline := time.Now().Add(time.Minute)
	for len(ends) > 0 {
		if time.Now().After(deadline) {
			t.Fatalf("reading %s: partitions %v not read to their end", topic, ends)
		}
		m, err := c.ReadMessage(100 * time.Millisecond)
		if err != nil {
			if kerr, ok := errors.AsType[kafka.Error](err); ok && kerr.IsTimeout() {
				continue
			}
			t.Fatal(err)
		}
		recs = append(recs, m)
		if int64(m.TopicPartition.Offset)+1 >= ends[m.TopicPartition.Partition] {
			delete(ends, m.TopicPartition.Partition)
		}
	}
	return recs
}
