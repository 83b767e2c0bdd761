package consumers

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// TestPoolIdleRecordsLeaveTheirWorker: a record whose handler waits idle
// (a reply held back until a floor, see Sleep) does not keep a worker from
// the records behind it, so a flood of such records cannot starve the
// others; its key stays taken, so the records behind it of its own key
// still wait for it, in order.
func TestPoolIdleRecordsLeaveTheirWorker(t *testing.T) {
	t.Parallel()
	const workers = 2
	f := newFakeConsumer(t)
	slow := []string{"slow-a", "slow-b", "slow-c", "slow-a"} // more than the workers, and a key again
	fast := distinctKeys("fast", 6)
	f.produce(0, slow...)
	f.produce(0, fast...)
	f.assign(0)
	release, open := gate()
	defer open()
	var (
		mu                sync.Mutex
		started, finished []rec
	)
	note := func(list *[]rec, r rec) {
		mu.Lock()
		defer mu.Unlock()
		*list = append(*list, r)
	}
	count := func(list *[]rec, keep func(rec) bool) int {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, r := range *list {
			if keep(r) {
				n++
			}
		}
		return n
	}
	isSlow := func(r rec) bool { return r.offset < int64(len(slow)) }
	p := startFakePool(t, f, Config{Workers: workers, QueueDepth: 1}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		r := recOf(msg)
		note(&started, r)
		if strings.HasPrefix(string(msg.Key), "slow") {
			resume := idle(ctx)
			<-release
			resume()
		}
		note(&finished, r)
		return nil
	}))

	waitFor(t, "every fast record to finish while the slow ones wait", func() bool {
		return count(&finished, func(r rec) bool { return !isSlow(r) }) == len(fast)
	})
	if n := count(&finished, isSlow); n != 0 {
		t.Fatalf("%d slow records finished before their release", n)
	}
	if n := count(&started, func(r rec) bool { return r.offset == 3 }); n != 0 {
		t.Fatal("the second record of slow-a started while the first waited")
	}
	open()
	waitFor(t, "every record to finish", func() bool { return count(&finished, func(rec) bool { return true }) == len(slow)+len(fast) })
	p.stop()
}
