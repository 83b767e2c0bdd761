package redis_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/redis"
)

// TestClientLinesAreJSON: while Redis cannot be reached, what the client
// library prints on its own goes to the structured log, one JSON object a
// line, and nothing to standard error.
func TestClientLinesAreJSON(t *testing.T) {
	var buf syncBuffer
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

// syncBuffer is a bytes.Buffer safe for the client's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
