package health_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/health"
)

// fakeStore is a store whose answer a test sets, counting its pings.
type fakeStore struct {
	down  atomic.Bool
	pings atomic.Int64
}

func (f *fakeStore) ping(ctx context.Context) error {
	f.pings.Add(1)
	if f.down.Load() {
		return domain.Unavailable("fake", errors.New("connection refused"))
	}
	return ctx.Err()
}

func newStore(t *testing.T, f *fakeStore, interval time.Duration) *health.Store {
	t.Helper()
	s, err := health.New(health.Config{Name: "fake", Ping: f.ping, Interval: interval})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// run runs s until the test ends.
func run(t *testing.T, s *health.Store) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { s.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
}

// waitUntil fails the test when cond does not hold within 10 s: a bound
// for a stuck component, not a measure of speed.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(end) {
			t.Fatalf("%s: not within 10 s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

func TestCheckRecords(t *testing.T) {
	tests := []struct {
		name      string
		storeDown []bool // the store's state at each Check
		wantDown  bool
		wantDowns uint64
	}{
		{"Up", []bool{false}, false, 0},
		{"Down", []bool{true}, true, 1},
		{"DownTwiceIsOneOutage", []bool{true, true}, true, 1},
		{"Back", []bool{true, false}, false, 1},
		{"TwoOutages", []bool{true, false, true}, true, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &fakeStore{}
			s := newStore(t, f, time.Hour)
			var err error
			for _, down := range tt.storeDown {
				f.down.Store(down)
				err = s.Check(context.Background())
			}
			if got := s.Down(); got != tt.wantDown {
				t.Errorf("Down() = %v, want %v", got, tt.wantDown)
			}
			if got := s.Downs(); got != tt.wantDowns {
				t.Errorf("Downs() = %d, want %d", got, tt.wantDowns)
			}
			if gotCode, wantCode := domain.ErrorCode(err), map[bool]domain.Code{true: domain.CodeUnavailable}[tt.wantDown]; gotCode != wantCode {
				t.Errorf("last Check = %v, want code %q", err, wantCode)
			}
		})
	}
}

// TestCheckIgnoresAnAbandonedCaller: a caller that went away learns
// nothing of the store, and the store is not marked down for it.
func TestCheckIgnoresAnAbandonedCaller(t *testing.T) {
	s := newStore(t, &fakeStore{}, time.Hour)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := s.Check(ctx); err == nil {
		t.Error("Check with a cancelled context: nil, want its error")
	}
	if s.Down() {
		t.Error("a cancelled readiness check marked the store down")
	}
}

// TestSuspectFindsTheStoreDown: a request that found the store unavailable
// has it pinged at once, and a failed ping closes the gate.
func TestSuspectFindsTheStoreDown(t *testing.T) {
	f := &fakeStore{}
	s := newStore(t, f, time.Hour) // no periodic ping while up anyway
	run(t, s)
	f.down.Store(true)
	s.Suspect()
	waitUntil(t, "marked down after Suspect", s.Down)
}

// TestSuspectOfAnUpStoreKeepsItUp: a request's failure that the store's
// ping does not confirm leaves the gate open.
func TestSuspectOfAnUpStoreKeepsItUp(t *testing.T) {
	f := &fakeStore{}
	s := newStore(t, f, time.Hour)
	run(t, s)
	s.Suspect()
	waitUntil(t, "pinged after Suspect", func() bool { return f.pings.Load() == 1 })
	if s.Down() {
		t.Error("marked down though the ping succeeded")
	}
}

// TestRunReopensWhenTheStoreIsBack: while down, the store is pinged every
// interval, and the first ping that succeeds opens the gate.
func TestRunReopensWhenTheStoreIsBack(t *testing.T) {
	f := &fakeStore{}
	f.down.Store(true)
	s := newStore(t, f, 5*time.Millisecond)
	if err := s.Check(context.Background()); err == nil {
		t.Fatal("Check of a down store: nil")
	}
	run(t, s)
	waitUntil(t, "pinged again while down", func() bool { return f.pings.Load() >= 3 })
	if !s.Down() {
		t.Fatal("up while every ping fails")
	}
	f.down.Store(false)
	waitUntil(t, "up once a ping succeeds", func() bool { return !s.Down() })
}

// TestNoPingsWhileUp: an up store costs no pings but those asked for.
func TestNoPingsWhileUp(t *testing.T) {
	f := &fakeStore{}
	s := newStore(t, f, time.Millisecond)
	run(t, s)
	time.Sleep(50 * time.Millisecond) // 50 intervals
	if n := f.pings.Load(); n != 0 {
		t.Errorf("%d pings of an up store nobody suspected, want 0", n)
	}
}

// TestSuspectWhileDownAddsNoPings: requests refused while the store is
// down do not turn the periodic ping into one per request.
func TestSuspectWhileDownAddsNoPings(t *testing.T) {
	f := &fakeStore{}
	f.down.Store(true)
	s := newStore(t, f, time.Hour)
	_ = s.Check(context.Background())
	run(t, s)
	for range 100 {
		s.Suspect()
	}
	time.Sleep(50 * time.Millisecond)
	if n := f.pings.Load(); n != 1 {
		t.Errorf("%d pings, want only the first Check's", n)
	}
}

func TestConfigValidate(t *testing.T) {
	ping := func(context.Context) error { return nil }
	tests := []struct {
		name string
		cfg  health.Config
		ok   bool
	}{
		{"Defaults", health.Config{Name: "redis", Ping: ping}, true},
		{"NoName", health.Config{Ping: ping}, false},
		{"NoPing", health.Config{Name: "redis"}, false},
		{"NegativeInterval", health.Config{Name: "redis", Ping: ping, Interval: -1}, false},
		{"NegativeTimeout", health.Config{Name: "redis", Ping: ping, Timeout: -1}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := health.New(tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("New() error = %v, want ok %v", err, tt.ok)
			}
		})
	}
}

// TestOneSlowPingIsNotAnOutage: a ping that runs out of time may have
// waited for a busy pool rather than a dead store, so one marks nothing;
// a second in a row marks the store down. A refused ping marks it at once.
func TestOneSlowPingIsNotAnOutage(t *testing.T) {
	slow := func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }
	tests := []struct {
		name     string
		pings    []string // "slow", "refused" or "ok", in order
		wantDown bool
	}{
		{"OneSlow", []string{"slow"}, false},
		{"TwoSlow", []string{"slow", "slow"}, true},
		{"SlowThenOK", []string{"slow", "ok", "slow"}, false},
		{"Refused", []string{"refused"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var next atomic.Value
			s, err := health.New(health.Config{Name: "fake", Interval: time.Hour, Ping: func(ctx context.Context) error {
				switch next.Load() {
				case "slow":
					return slow(ctx)
				case "refused":
					return errors.New("connection refused")
				}
				return nil
			}})
			if err != nil {
				t.Fatal(err)
			}
			for _, p := range tt.pings {
				next.Store(p)
				ctx, cancel := context.WithTimeout(context.Background(), time.Millisecond)
				s.Check(ctx)
				cancel()
			}
			if got := s.Down(); got != tt.wantDown {
				t.Errorf("Down() = %v after %v, want %v", got, tt.pings, tt.wantDown)
			}
		})
	}
}
