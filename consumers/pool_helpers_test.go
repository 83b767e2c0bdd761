package consumers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// poolWait bounds every wait in the pool tests: far above what any step
// takes, it only turns a hang into a failure.
const poolWait = 60 * time.Second

// rec identifies a record by where the broker put it.
type rec struct {
	partition int32
	offset    int64
}

func (r rec) String() string { return fmt.Sprintf("%d@%d", r.partition, r.offset) }

func recOf(msg *kafka.Message) rec {
	return rec{partition: msg.TopicPartition.Partition, offset: int64(msg.TopicPartition.Offset)}
}

// runningPool is a Pool whose Run is in progress.
type runningPool struct {
	*Pool
	tb      testing.TB
	cancel  context.CancelFunc
	done    chan struct{}
	err     error
	stopped bool
}

// runPool runs p until stop, or until the test ends.
func runPool(tb testing.TB, p *Pool) *runningPool {
	ctx, cancel := context.WithCancel(context.Background())
	rp := &runningPool{Pool: p, tb: tb, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(rp.done)
		rp.err = p.Run(ctx)
	}()
	tb.Cleanup(func() { rp.stop() })
	return rp
}

// stop cancels Run and waits for it to return: within DrainTimeout, the
// grace for handlers ignoring cancellation, and a margin for leaving the
// group and closing.
func (rp *runningPool) stop() {
	rp.tb.Helper()
	if rp.stopped {
		return
	}
	rp.stopped = true
	rp.cancel()
	limit := rp.cfg.DrainTimeout + abandonGrace + 10*time.Second
	select {
	case <-rp.done:
	case <-time.After(limit):
		rp.tb.Fatalf("Run did not return within %v of its context ending", limit)
	}
	if rp.err != nil {
		rp.tb.Errorf("Run: %v", rp.err)
	}
}

// waitFor polls cond until it holds, failing the test after poolWait.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	deadline := time.Now().Add(poolWait)
	for !cond() {
		if time.Now().After(deadline) {
			tb.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// tally counts handled records, safe for concurrent handlers.
type tally struct {
	mu    sync.Mutex
	count map[rec]int
}

func newTally() *tally { return &tally{count: map[rec]int{}} }

func (t *tally) add(r rec) {
	t.mu.Lock()
	t.count[r]++
	t.mu.Unlock()
}

func (t *tally) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.count)
}

func (t *tally) snapshot() map[rec]int {
	t.mu.Lock()
	defer t.mu.Unlock()
	m := make(map[rec]int, len(t.count))
	for r, n := range t.count {
		m[r] = n
	}
	return m
}

// covers reports whether every record in want was handled at least once.
func (t *tally) covers(want []rec) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, r := range want {
		if t.count[r] == 0 {
			return false
		}
	}
	return true
}

// countingHandler tallies every record and succeeds.
func countingHandler(t *tally) Handler {
	return HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		t.add(recOf(msg))
		return nil
	})
}

// distinctKeys returns n distinct keys.
func distinctKeys(prefix string, n int) []string {
	keys := make([]string, n)
	for i := range keys {
		keys[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return keys
}

var errNotYet = errors.New("not yet")
