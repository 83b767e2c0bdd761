package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/testenv"
)

// TestEveryLogLineIsJSON: a worker whose Redis goes down and comes back
// while it answers logins, with librdkafka's broker debugging on (its
// own lines about connections, which it writes to standard error as text
// unless the worker takes them), writes nothing but JSON records to its
// standard output and error: librdkafka's lines and go-redis's are among
// them, as records of their components.
func TestEveryLogLineIsJSON(t *testing.T) {
	rs := testenv.PrivateRedis(t)
	pw := newProcessWorker(t, "REDIS_URL="+rs.URL(), "KAFKA_DEBUG=broker", "LOG_LEVEL=debug")
	pw.start(t)
	waitFor(t, "the worker to be ready", func() bool { return ready(pw.httpAddr) })
	c := pw.newClient(t, 30*time.Second)
	ctx := context.Background()
	email := testenv.Unique("jsonlog-") + "@example.com"
	if _, err := c.Register(ctx, email, password); err != nil {
		t.Fatal(err)
	}
	rs.Stop(t)
	waitFor(t, "a login refused while Redis is down", func() bool {
		_, err := c.Login(ctx, email, password)
		return domain.ErrorCode(err) == domain.CodeUnavailable
	})
	rs.Start(t)
	waitFor(t, "a login once Redis is back", func() bool {
		_, err := c.Login(ctx, email, password)
		return err == nil
	})

	b, err := os.ReadFile(pw.logPath)
	if err != nil {
		t.Fatal(err)
	}
	components := map[string]int{}
	for i, line := range bytes.Split(bytes.TrimSpace(b), []byte("\n")) {
		var rec struct{ Component string }
		if err := json.Unmarshal(line, &rec); err != nil {
			t.Errorf("line %d is not JSON: %.200s", i+1, line)
			continue
		}
		components[rec.Component]++
	}
	for _, want := range []string{"kafka client", "redis client"} {
		if components[want] == 0 {
			t.Errorf("no line of the %s among %v: the test provoked none", want, components)
		}
	}
	t.Logf("records by component: %v", components)
}
