package consumers_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/schemas"
)

// fakeObserver records what Requests observed, and is its clock: each
// reading is 10 ms after the one before.
type fakeObserver struct {
	mu      sync.Mutex
	clock   time.Time
	replied []consumers.Replied
	dead    []string
}

var epoch = time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)

func (f *fakeObserver) now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.clock.IsZero() {
		f.clock = epoch
	}
	f.clock = f.clock.Add(10 * time.Millisecond)
	return f.clock
}

func (f *fakeObserver) Replied(r consumers.Replied) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.replied = append(f.replied, r)
}

func (f *fakeObserver) DeadLettered(reason string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.dead = append(f.dead, reason)
}

// TestRequestsObserveReplies: each acknowledged reply is reported once,
// with its operation's registry name, its wire status, the handling time
// and the record's age; a record without a timestamp has no age.
func TestRequestsObserveReplies(t *testing.T) {
	tests := []struct {
		name      string
		timestamp kafka.TimestampType
		wantAge   bool
	}{
		{"CreateTime", kafka.TimestampCreateTime, true},
		{"LogAppendTime", kafka.TimestampLogAppendTime, true},
		{"NoTimestamp", kafka.TimestampNotAvailable, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			msg := f.message(t, correlation)
			msg.Timestamp, msg.TimestampType = epoch.Add(-time.Second), tt.timestamp
			if err := f.requests.Handle(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			want := consumers.Replied{Op: "login", Status: schemas.StatusUnauthorized, Handling: 10 * time.Millisecond}
			if tt.wantAge {
				want.Age, want.HasAge = time.Second+20*time.Millisecond, true
			}
			if len(f.observer.replied) != 1 || f.observer.replied[0] != want {
				t.Errorf("observed %+v, want [%+v]", f.observer.replied, want)
			}
			if len(f.observer.dead) != 0 {
				t.Errorf("observed dead letters %v, want none", f.observer.dead)
			}
		})
	}
}

// TestRequestsObserveDeadLetters: a dead letter is reported with its
// reason; an undecoded request that is answered is reported without an
// operation.
func TestRequestsObserveDeadLetters(t *testing.T) {
	f := newFixture(t)
	msg := f.message(t, correlation)
	msg.Value = []byte("not avro")
	if err := f.requests.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if len(f.observer.dead) != 1 || f.observer.dead[0] != schemas.DeadLetterUndecodable {
		t.Errorf("observed dead letters %v, want [%s]", f.observer.dead, schemas.DeadLetterUndecodable)
	}
	if len(f.observer.replied) != 1 || f.observer.replied[0].Op != "" || f.observer.replied[0].Status != schemas.StatusInvalid {
		t.Errorf("observed %+v, want one INVALID reply without an operation", f.observer.replied)
	}
}

// TestRequestsObserveNothingWithoutAnOutcome: a request the worker stops
// before answering is read again later, and counted then.
func TestRequestsObserveNothingWithoutAnOutcome(t *testing.T) {
	f := newFixture(t)
	f.answerer.err = context.Canceled
	_ = f.requests.Handle(context.Background(), f.message(t, correlation))
	if len(f.observer.replied) != 0 || len(f.observer.dead) != 0 {
		t.Errorf("observed %+v and %v, want nothing", f.observer.replied, f.observer.dead)
	}
}
