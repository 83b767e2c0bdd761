package consumers

import (
	"context"
	"fmt"
	"math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestPoolIdleKeepsWorkersBounded: however many times records wait idle,
// at most Workers handlers work (outside their waits) at once, every
// record is handled, and once the pool is quiet it is back to Workers
// workers: the workers started to stand in for idle records stop.
func TestPoolIdleKeepsWorkersBounded(t *testing.T) {
	t.Parallel()
	for _, waits := range []int{1, 2, 3} {
		t.Run(fmt.Sprintf("Waits=%d", waits), func(t *testing.T) {
			t.Parallel()
			const workers, records = 2, 300
			f := newFakeConsumer(t)
			f.produce(0, distinctKeys("k", records)...)
			f.assign(0)
			var working, peak, finished atomic.Int64
			enter := func() {
				n := working.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
			}
			p := startFakePool(t, f, Config{Workers: workers, QueueDepth: 4}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
				enter()
				for range waits {
					working.Add(-1)
					Sleep(ctx, time.Millisecond)
					enter()
					time.Sleep(100 * time.Microsecond) // work between the waits
				}
				working.Add(-1)
				finished.Add(1)
				return nil
			}))
			waitFor(t, "every record", func() bool { return finished.Load() == records })
			waitFor(t, "the pool back to its workers", func() bool {
				p.crew.Lock()
				defer p.crew.Unlock()
				return p.live == workers && p.idling == 0
			})
			if n := peak.Load(); n > workers {
				t.Errorf("%d handlers worked at once, Workers is %d", n, workers)
			}
		})
	}
}

// TestPoolIdleStress: records of repeated keys on two partitions wait idle
// zero to two times, for random short times. Every record is handled, at
// most Workers handlers work at once, and once Run returns no worker is
// left running.
//
// Not parallel: it counts every worker goroutine of the test binary.
func TestPoolIdleStress(t *testing.T) {
	const workers = 3
	f := newFakeConsumer(t)
	total := 0
	for partition := int32(0); partition < 2; partition++ {
		keys := distinctKeys("k", 300)
		for i := range keys {
			keys[i] = keys[i][:len(keys[i])-1] // ten records a key
		}
		f.produce(partition, keys...)
		total += len(keys)
	}
	f.assign(0, 1)
	var working, peak, finished atomic.Int64
	enter := func() {
		n := working.Add(1)
		for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
		}
	}
	p := startFakePool(t, f, Config{Workers: workers, QueueDepth: 1}, HandlerFunc(func(ctx context.Context, msg *kafka.Message) error {
		enter()
		for range rand.IntN(3) {
			working.Add(-1)
			Sleep(ctx, time.Duration(rand.IntN(2000))*time.Microsecond)
			enter()
		}
		working.Add(-1)
		finished.Add(1)
		return nil
	}))
	waitFor(t, "every record", func() bool { return finished.Load() == int64(total) })
	if n := peak.Load(); n > workers {
		t.Errorf("%d handlers worked at once, Workers is %d", n, workers)
	}
	p.stop()
	waitFor(t, "no worker left after Run returned", func() bool { return runningWorkers() == 0 })
}

// runningWorkers counts the goroutines in Pool.work.
func runningWorkers() int {
	buf := make([]byte, 1<<22)
	n := runtime.Stack(buf, true)
	return strings.Count(string(buf[:n]), "consumers.(*Pool).work(")
}
