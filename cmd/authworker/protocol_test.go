package main

import (
	"context"
	"encoding/base64"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/authworker/authworker/testenv"
)

// assignedPartitions counts the partitions a worker's log (at LOG_LEVEL
// info) says were assigned to it, over its whole life.
func assignedPartitions(t *testing.T, logPath string) int {
	t.Helper()
	b, err := os.ReadFile(logPath)
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	n := 0
	for _, m := range assignedLine.FindAllSubmatch(b, -1) {
		var count int
		fmt.Sscan(string(m[1]), &count)
		n += count
	}
	return n
}

var assignedLine = regexp.MustCompile(`"msg":"partitions assigned","count":(\d+)`)

// TestGroupProtocols runs the worker under both consumer group protocols,
// the classic one (cooperative-sticky) and KIP-848's (group.protocol=
// consumer, assigned by the broker): under each it answers requests from
// its start, while a second worker joins and leaves, and after it is
// killed and replaced. It logs how long each step takes, for the README.
func TestGroupProtocols(t *testing.T) {
	tests := []struct {
		name string
		env  []string
	}{
		// The classic protocol's session timeout is the client's: the
		// broker's least.
		{"Classic", []string{"KAFKA_SESSION_TIMEOUT_MS=6000"}},
		// KIP-848's is the broker's (group.consumer.session.timeout.ms,
		// 45 s by default); librdkafka refuses session.timeout.ms.
		{"Consumer", []string{"KAFKA_GROUP_PROTOCOL=consumer"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			pw := newProcessWorker(t, append(tt.env, "LOG_LEVEL=info")...)
			dir := t.TempDir()
			c := pw.newClient(t, 2*time.Minute)
			// answerAll sends an introspection to every partition, so all
			// of them must be served by some member, and waits for the
			// answers.
			answerAll := func(what string) {
				t.Helper()
				var wg sync.WaitGroup
				for i := range 24 { // keyless: spread over the partitions
					wg.Go(func() {
						if _, err := c.Introspect(context.Background(), fmt.Sprintf("bogus-%d", i), ""); err != nil {
							t.Errorf("%s: introspect: %v", what, err)
						}
					})
				}
				wg.Wait()
				if t.Failed() {
					t.FailNow()
				}
			}
			waitAssigned := func(what, logPath string, n int) {
				t.Helper()
				deadline := time.Now().Add(2 * time.Minute)
				for assignedPartitions(t, logPath) < n {
					if time.Now().After(deadline) {
						t.Fatalf("%s: fewer than %d partitions assigned after 2 minutes", what, n)
					}
					time.Sleep(20 * time.Millisecond)
				}
			}

			firstLog := filepath.Join(dir, "first.log")
			start := time.Now()
			first := startProcess(t, pw.env, firstLog)
			answerAll("first start")
			started := time.Since(start)

			secondLog := filepath.Join(dir, "second.log")
			start = time.Now()
			second := startProcess(t, append(append([]string(nil), pw.env...), "HTTP_ADDR="+freeAddr(t)), secondLog)
			waitAssigned("the joining worker", secondLog, 1)
			joined := time.Since(start)
			answerAll("with two workers")

			before := assignedPartitions(t, firstLog)
			start = time.Now()
			second.stop(t, syscall.SIGTERM)
			waitAssigned("the remaining worker", firstLog, before+1)
			left := time.Since(start)
			answerAll("after the second left")

			start = time.Now()
			first.stop(t, syscall.SIGKILL)
			third := startProcess(t, append(append([]string(nil), pw.env...), "HTTP_ADDR="+freeAddr(t)), filepath.Join(dir, "third.log"))
			answerAll("after a kill")
			replaced := time.Since(start)
			third.stop(t, syscall.SIGTERM)

			b, _ := os.ReadFile(firstLog)
			preview := strings.Contains(string(b), "Preview")
			t.Logf("%s: first start to every partition answering %v; a joining worker assigned partitions in %v; a leaving one's back to the other in %v; a killed worker replaced, every partition answering, in %v (librdkafka says preview: %v)",
				tt.name, started.Round(10*time.Millisecond), joined.Round(10*time.Millisecond), left.Round(10*time.Millisecond), replaced.Round(10*time.Millisecond), preview)
		})
	}
}

// TestKIP848RefusesClientSessionSettings: under group.protocol=consumer the
// broker owns the session, so a worker given the classic protocol's
// session timeout refuses to start, naming it, rather than run with a
// setting that does nothing.
func TestKIP848RefusesClientSessionSettings(t *testing.T) {
	topics := []string{testenv.Name(t, "req"), testenv.Name(t, "resp"), testenv.Name(t, "dlq"), testenv.Name(t, "notify"), testenv.Name(t, "events")}
	bootstrap := testenv.KafkaBootstrap(t)
	t.Cleanup(func() { deleteTopics(t, bootstrap, topics...) })
	cfg, err := LoadConfig([]string{
		"DATABASE_URL=" + testenv.Database(t), "REDIS_URL=" + testenv.RedisURL(t), "KAFKA_BOOTSTRAP_SERVERS=" + bootstrap,
		"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"AUTH_REQUEST_TOPIC=" + topics[0], "AUTH_RESPONSE_TOPIC=" + topics[1], "AUTH_DLQ_TOPIC=" + topics[2],
		"AUTH_NOTIFICATIONS_TOPIC=" + topics[3], "AUTH_EVENTS_TOPIC=" + topics[4], "AUTH_REPLY_TOPICS=" + topics[1], "HTTP_ADDR=127.0.0.1:0",
		"KAFKA_GROUP_PROTOCOL=consumer", "KAFKA_SESSION_TIMEOUT_MS=6000",
	})
	if err != nil {
		t.Fatal(err)
	}
	m := NewMain(cfg, slog.New(slog.DiscardHandler))
	defer m.Close()
	err = m.Open(context.Background())
	if want := "session.timeout.ms cannot be set with group.protocol=consumer"; err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "KAFKA_") {
		t.Errorf("Open error = %v, want one naming KAFKA_* and %q", err, want)
	}
}
