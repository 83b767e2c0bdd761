package redis_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/redis"
	"github.com/authworker/authworker/testenv"
)

// TestClientLinesAreJSON: while Redis cannot be reached, what the client
// library prints on its own goes to the structured log, one JSON object a
// line, and nothing to standard error.
func TestClientLinesAreJSON(t *testing.T) {
	var buf testenv.SyncBuffer
	redis.LogTo(slog.New(slog.NewJSONHandler(&buf, nil)))
	t.Cleanup(func() { redis.LogTo(slog.New(slog.DiscardHandler)) })

	// Nothing listens on port 1 of the loopback: dials fail at once.
	c, err := redis.Open(context.Background(), redis.Config{URL: "redis://127.0.0.1:1/0", Timeout: 200 * time.Millisecond})
	if err == nil {
		c.Close()
		t.Fatal("Open of an unreachable Redis succeeded")
	}
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if lines[0] == "" {
		t.Fatal("nothing logged while Redis was unreachable")
	}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Fatalf("line %q is not JSON: %v", l, err)
		}
		if rec["level"] != "WARN" || rec["component"] != "redis client" {
			t.Errorf("record %v, want level WARN and component %q", rec, "redis client")
		}
	}
}
