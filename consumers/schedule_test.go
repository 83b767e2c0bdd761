package consumers

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// keyed is a job for a record of key at offset.
func keyed(key string, offset int64) job {
	var k []byte
	if key != "" {
		k = []byte(key)
	}
	return job{msg: &kafka.Message{Key: k, TopicPartition: kafka.TopicPartition{Offset: kafka.Offset(offset)}}}
}

// take returns the records next hands out while none is done, up to n.
func take(t *testing.T, s *scheduler, n int) (offsets []int64, queues []*keyQueue) {
	t.Helper()
	for range n {
		select {
		case <-s.readyN:
			s.readyN <- struct{}{} // put the token back for next
		default:
			return offsets, queues
		}
		j, q, ok := s.next()
		if !ok {
			t.Fatal("next: scheduler closed")
		}
		offsets = append(offsets, int64(j.msg.TopicPartition.Offset))
		queues = append(queues, q)
	}
	return offsets, queues
}

// TestSchedulerHandsOutOldestFreeKey: whatever the keys, every record whose
// key has nothing running is handed out at once, oldest first; records of
// a running key wait for it, in order.
func TestSchedulerHandsOutOldestFreeKey(t *testing.T) {
	tests := []struct {
		name     string
		keys     []string // offset i has keys[i]; "" is keyless
		first    []int64  // handed out before any is done
		thenDone []int64  // handed out as each of first is done, in turn
	}{
		{"DistinctKeysAllAtOnce", []string{"a", "b", "c", "d"}, []int64{0, 1, 2, 3}, nil},
		{"OneKeyOneAtATime", []string{"a", "a", "a"}, []int64{0}, []int64{1}},
		{"OthersPassABusyKey", []string{"a", "a", "b", "a", "c"}, []int64{0, 2, 4}, []int64{1}},
		{"KeylessNeedNoOrder", []string{"", "", ""}, []int64{0, 1, 2}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newScheduler(len(tt.keys))
			for i, k := range tt.keys {
				if !s.tryOffer(keyed(k, int64(i))) {
					t.Fatalf("offer of record %d refused below the limit", i)
				}
			}
			got, queues := take(t, s, len(tt.keys))
			if !slices.Equal(got, tt.first) {
				t.Fatalf("handed out %v, want %v", got, tt.first)
			}
			s.done(queues[0])
			then, _ := take(t, s, len(tt.keys))
			if !slices.Equal(then, tt.thenDone) {
				t.Errorf("after the first was done, handed out %v, want %v", then, tt.thenDone)
			}
		})
	}
}

// TestSchedulerLimit: the scheduler holds at most its limit, running or
// queued, and makes room as records are done.
func TestSchedulerLimit(t *testing.T) {
	s := newScheduler(2)
	if !s.tryOffer(keyed("a", 0)) || !s.tryOffer(keyed("a", 1)) {
		t.Fatal("offers below the limit refused")
	}
	if s.tryOffer(keyed("b", 2)) {
		t.Fatal("an offer beyond the limit was taken")
	}
	_, q, _ := s.next()
	added := make(chan bool)
	go func() { added <- s.offer(context.Background(), keyed("b", 2), time.Minute) }()
	s.done(q)
	if !<-added {
		t.Error("an offer waiting for room was refused once a record was done")
	}
	if n := s.len(); n != 2 {
		t.Errorf("holds %d, want 2", n)
	}
	if s.offer(context.Background(), keyed("c", 3), time.Millisecond) {
		t.Error("an offer beyond the limit was taken after its wait")
	}
}

// TestSchedulerCloseDropsQueued: once closed, the ready records are still
// handed out (for the pool to skip), and a key's queued records are
// dropped as its running one is done.
func TestSchedulerCloseDropsQueued(t *testing.T) {
	s := newScheduler(4)
	for i, k := range []string{"a", "a", "a", "b"} {
		s.tryOffer(keyed(k, int64(i)))
	}
	_, qa, _ := s.next()
	s.close()
	if s.tryOffer(keyed("c", 4)) {
		t.Error("a closed scheduler took a record")
	}
	j, qb, ok := s.next()
	if !ok || j.msg.TopicPartition.Offset != 3 {
		t.Fatalf("next after close = %v, %v; want the ready record of b", j.msg, ok)
	}
	if dropped := s.done(qa); dropped != 2 {
		t.Errorf("done dropped %d of a's queued records, want 2", dropped)
	}
	if dropped := s.done(qb); dropped != 0 {
		t.Errorf("done dropped %d of b's, want none", dropped)
	}
	if _, _, ok := s.next(); ok {
		t.Error("next handed out a record once everything was taken or dropped")
	}
	if n := s.len(); n != 0 {
		t.Errorf("holds %d after close and done, want 0", n)
	}
}
