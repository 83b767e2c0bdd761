package passwords_test

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/passwords"
)

// fakeClock is a clock that moves only when a gate's hash finishes.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// gate is a BlockingHasher whose calls each wait for a token on release
// (none when release is nil) and then cost cost on clock. It records the
// password of each call in the order the calls start, and the most calls
// that ran at once.
type gate struct {
	release chan struct{}
	clock   *fakeClock
	cost    time.Duration

	mu      sync.Mutex
	started []string
	running int
	most    int
}

func newGate(clock *fakeClock, cost time.Duration) *gate {
	return &gate{release: make(chan struct{}), clock: clock, cost: cost}
}

func (g *gate) run(password string) {
	g.mu.Lock()
	g.started = append(g.started, password)
	g.running++
	g.most = max(g.most, g.running)
	g.mu.Unlock()
	if g.release != nil {
		<-g.release
	} else {
		runtime.Gosched()
		time.Sleep(100 * time.Microsecond) // let the others overlap
	}
	if g.clock != nil {
		g.clock.advance(g.cost)
	}
	g.mu.Lock()
	g.running--
	g.mu.Unlock()
}

func (g *gate) Hash(password string) (string, error) {
	g.run(password)
	return "hash:" + password, nil
}

func (g *gate) Verify(password, encoded string) (bool, bool, error) {
	g.run(password)
	return encoded == "hash:"+password, false, nil
}

func (g *gate) VerifyDummy(password string) { g.run(password) }

// calls returns how many calls started.
func (g *gate) calls() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return len(g.started)
}

func (g *gate) order() []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return append([]string(nil), g.started...)
}

// waitFor polls cond until it holds: it waits for goroutines to reach a
// state, not for time to pass.
func waitFor(tb testing.TB, what string, cond func() bool) {
	tb.Helper()
	for i := 0; !cond(); i++ {
		if i > 200000 {
			tb.Fatalf("never reached: %s", what)
		}
		runtime.Gosched()
		time.Sleep(50 * time.Microsecond)
	}
}

func newPool(tb testing.TB, inner passwords.BlockingHasher, cfg passwords.PoolConfig) *passwords.Pool {
	tb.Helper()
	p, err := passwords.NewPool(inner, cfg)
	if err != nil {
		tb.Fatalf("NewPool: %v", err)
	}
	tb.Cleanup(p.Close)
	return p
}

// occupy starts a hash that holds a slot until g releases it, and returns
// a channel closed when it finished.
func occupy(tb testing.TB, p *passwords.Pool, g *gate, password string) <-chan struct{} {
	tb.Helper()
	done := make(chan struct{})
	before := g.calls()
	go func() {
		defer close(done)
		if _, err := p.Hash(context.Background(), password); err != nil {
			tb.Errorf("occupying hash: %v", err)
		}
	}()
	waitFor(tb, "occupying hash running", func() bool { return g.calls() > before })
	return done
}

// method is one of the pool's three admission-controlled methods, reduced
// to its error.
type method struct {
	name string
	call func(ctx context.Context, p *passwords.Pool, password string) error
}

var methods = []method{
	{"Hash", func(ctx context.Context, p *passwords.Pool, pw string) error { _, err := p.Hash(ctx, pw); return err }},
	{"Verify", func(ctx context.Context, p *passwords.Pool, pw string) error {
		_, _, err := p.Verify(ctx, pw, "hash:"+pw)
		return err
	}},
	{"VerifyDummy", func(ctx context.Context, p *passwords.Pool, pw string) error { return p.VerifyDummy(ctx, pw) }},
}

func TestPoolRunsInArrivalOrder(t *testing.T) {
	for _, m := range methods {
		t.Run(m.name, func(t *testing.T) {
			g := newGate(nil, 0)
			p := newPool(t, g, passwords.PoolConfig{Slots: 1, Queue: 8, MaxWait: time.Hour})
			first := occupy(t, p, g, "first")
			var wg sync.WaitGroup
			for i, pw := range []string{"a", "b", "c", "d"} {
				wg.Go(func() {
					if err := m.call(context.Background(), p, pw); err != nil {
						t.Errorf("%s: %v", pw, err)
					}
				})
				waitFor(t, pw+" queued", func() bool { return p.Stats().Queued == i+1 })
			}
			for range 5 {
				g.release <- struct{}{}
			}
			<-first
			wg.Wait()
			if got, want := g.order(), []string{"first", "a", "b", "c", "d"}; !equal(got, want) {
				t.Errorf("ran in order %v, want %v", got, want)
			}
		})
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestPoolNeverRunsMoreThanSlots(t *testing.T) {
	for _, tt := range []struct {
		name  string
		slots int
	}{{"OneSlot", 1}, {"TwoSlots", 2}, {"ThreeSlots", 3}} {
		t.Run(tt.name, func(t *testing.T) {
			g := &gate{} // no release channel: each call just yields a while
			p := newPool(t, g, passwords.PoolConfig{Slots: tt.slots, Queue: 64, MaxWait: time.Hour})
			var wg sync.WaitGroup
			for i := range 48 {
				wg.Go(func() {
					if err := methods[i%3].call(context.Background(), p, "pw"); err != nil {
						t.Errorf("call %d: %v", i, err)
					}
				})
			}
			wg.Wait()
			if g.most > tt.slots {
				t.Errorf("%d hashes ran at once, want at most %d", g.most, tt.slots)
			}
			if g.calls() != 48 {
				t.Errorf("%d hashes ran, want 48", g.calls())
			}
			if s := p.Stats(); s.Busy != 0 || s.Queued != 0 || s.Slots != tt.slots || s.Admitted != 48 || s.Wait.Count() != 48 {
				t.Errorf("stats after the burst = %+v, want 0 busy, 0 queued, %d slots, 48 admitted and waits", s, tt.slots)
			}
		})
	}
}

// measured returns a pool over a gate whose hashes cost an hour on a fake
// clock, after one hash has taught the pool that cost.
func measured(t *testing.T, cfg passwords.PoolConfig) (*passwords.Pool, *gate, *fakeClock) {
	t.Helper()
	clock := &fakeClock{now: time.Now()}
	g := newGate(clock, time.Hour)
	cfg.Now = clock.Now
	p := newPool(t, g, cfg)
	done := occupy(t, p, g, "teach")
	g.release <- struct{}{}
	<-done
	if got := p.Stats().Expected; got != time.Hour {
		t.Fatalf("expected hash time %v after one hash of an hour, want 1h", got)
	}
	return p, g, clock
}

// TestPoolSheds: a request that cannot be hashed in time is refused at once,
// by the same rule for Hash, Verify and VerifyDummy, and nothing is hashed.
func TestPoolSheds(t *testing.T) {
	tests := []struct {
		name string
		cfg  passwords.PoolConfig
		// busy hashes hold the slots, queued requests (with no deadline)
		// wait behind them, then the request comes with a deadline this
		// far away (none when 0).
		busy, queued   int
		deadline       time.Duration
		wantCode       domain.Code
		wantRetryAfter time.Duration
		wantShed       func(passwords.ShedCounts) uint64
	}{
		{
			name: "DeadlineLeavesNoTimeToHash", cfg: passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: 100 * time.Hour},
			deadline: 30 * time.Minute, wantCode: domain.CodeDeadlineExceeded,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.TooLate },
		},
		{
			name: "EstimatedWaitBeyondDeadline", cfg: passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: 100 * time.Hour},
			busy: 1, deadline: 90 * time.Minute, wantCode: domain.CodeRateLimited, wantRetryAfter: time.Hour,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.Overloaded },
		},
		{
			name: "EstimatedWaitCountsTheQueue", cfg: passwords.PoolConfig{Slots: 2, Queue: 4, MaxWait: 100 * time.Hour},
			busy: 2, queued: 2, deadline: 150 * time.Minute, wantCode: domain.CodeRateLimited, wantRetryAfter: 2 * time.Hour,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.Overloaded },
		},
		{
			name: "EstimatedWaitBeyondMaxWait", cfg: passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: 30 * time.Minute},
			busy: 1, wantCode: domain.CodeRateLimited, wantRetryAfter: time.Hour,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.Overloaded },
		},
		{
			name: "QueueFull", cfg: passwords.PoolConfig{Slots: 1, Queue: 2, MaxWait: 100 * time.Hour},
			busy: 1, queued: 2, deadline: 10 * time.Hour, wantCode: domain.CodeRateLimited, wantRetryAfter: 3 * time.Hour,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.QueueFull },
		},
		{
			name: "NoQueue", cfg: passwords.PoolConfig{Slots: 1, Queue: passwords.NoQueue, MaxWait: 100 * time.Hour},
			busy: 1, deadline: 10 * time.Hour, wantCode: domain.CodeRateLimited, wantRetryAfter: time.Hour,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.QueueFull },
		},
	}
	for _, tt := range tests {
		for _, m := range methods {
			t.Run(tt.name+"/"+m.name, func(t *testing.T) {
				p, g, clock := measured(t, tt.cfg)
				var held []<-chan struct{}
				for range tt.busy {
					held = append(held, occupy(t, p, g, "busy"))
				}
				queuedCtx, cancelQueued := context.WithCancel(context.Background())
				var wg sync.WaitGroup
				for i := range tt.queued {
					wg.Go(func() { _, _ = p.Hash(queuedCtx, "queued") })
					waitFor(t, "queued", func() bool { return p.Stats().Queued == i+1 })
				}
				t.Cleanup(func() {
					cancelQueued()
					wg.Wait()
					for _, h := range held {
						g.release <- struct{}{}
						<-h
					}
				})
				calls, before := g.calls(), p.Stats()

				ctx := context.Background()
				if tt.deadline > 0 {
					var cancel context.CancelFunc
					ctx, cancel = context.WithDeadline(ctx, clock.Now().Add(tt.deadline))
					defer cancel()
				}
				err := m.call(ctx, p, "late")

				var e *domain.Error
				if !errors.As(err, &e) || e.Code != tt.wantCode {
					t.Fatalf("error = %v, want code %s", err, tt.wantCode)
				}
				if e.RetryAfter != tt.wantRetryAfter {
					t.Errorf("retry after %v, want %v", e.RetryAfter, tt.wantRetryAfter)
				}
				if g.calls() != calls {
					t.Errorf("%d hashes ran for a shed request", g.calls()-calls)
				}
				after := p.Stats()
				if got := tt.wantShed(after.Shed) - tt.wantShed(before.Shed); got != 1 {
					t.Errorf("shed count of the reason went up by %d, want 1 (%+v)", got, after.Shed)
				}
				if after.Queued != tt.queued {
					t.Errorf("%d queued after the shed request, want %d", after.Queued, tt.queued)
				}
			})
		}
	}
}

// TestPoolQueuedRequestLeaves: a queued request whose context ends, or
// whose wait limit passes, leaves the queue at once (the slot is still held
// when it returns) and is not hashed when a slot frees.
func TestPoolQueuedRequestLeaves(t *testing.T) {
	tests := []struct {
		name     string
		cfg      passwords.PoolConfig
		ctx      func() (context.Context, context.CancelFunc)
		cancel   bool // the test cancels ctx once the request is queued
		wantCode domain.Code
		wantShed func(passwords.ShedCounts) uint64
	}{
		{
			name: "Cancelled", cfg: passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: time.Hour},
			ctx:    func() (context.Context, context.CancelFunc) { return context.WithCancel(context.Background()) },
			cancel: true, wantCode: domain.CodeUnavailable,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.Abandoned },
		},
		{
			name: "DeadlinePasses", cfg: passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: time.Hour},
			ctx: func() (context.Context, context.CancelFunc) {
				return context.WithTimeout(context.Background(), 200*time.Millisecond)
			},
			wantCode: domain.CodeDeadlineExceeded,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.WaitExpired },
		},
		{
			name: "MaxWaitWithoutDeadline", cfg: passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: 20 * time.Millisecond},
			ctx:      func() (context.Context, context.CancelFunc) { return context.Background(), func() {} },
			wantCode: domain.CodeRateLimited,
			wantShed: func(s passwords.ShedCounts) uint64 { return s.WaitExpired },
		},
	}
	for _, tt := range tests {
		for _, m := range methods {
			t.Run(tt.name+"/"+m.name, func(t *testing.T) {
				g := newGate(nil, 0)
				p := newPool(t, g, tt.cfg)
				held := occupy(t, p, g, "busy")
				ctx, cancel := tt.ctx()
				defer cancel()
				errc := make(chan error, 1)
				go func() { errc <- m.call(ctx, p, "leaver") }()
				if tt.cancel {
					waitFor(t, "queued", func() bool { return p.Stats().Queued == 1 })
					cancel()
				}
				err := <-errc
				if got := domain.ErrorCode(err); got != tt.wantCode {
					t.Errorf("error = %v, want code %s", err, tt.wantCode)
				}
				if tt.wantCode == domain.CodeRateLimited {
					if e, _ := errors.AsType[*domain.Error](err); e.RetryAfter <= 0 {
						t.Errorf("retry after %v, want a positive estimate", e.RetryAfter)
					}
				}
				s := p.Stats()
				if s.Queued != 0 || tt.wantShed(s.Shed) != 1 {
					t.Errorf("stats = %+v, want an empty queue and one shed of the reason", s)
				}
				g.release <- struct{}{}
				<-held
				if g.calls() != 1 {
					t.Errorf("%d hashes ran, want only the one that held the slot", g.calls())
				}
			})
		}
	}
}

func TestPoolHashIfIdle(t *testing.T) {
	t.Run("SlotFree", func(t *testing.T) {
		g := &gate{}
		p := newPool(t, g, passwords.PoolConfig{Slots: 1})
		hash, ok, err := p.HashIfIdle(context.Background(), "pw")
		if err != nil || !ok || hash != "hash:pw" {
			t.Errorf("HashIfIdle = %q, %v, %v; want the hash", hash, ok, err)
		}
	})
	t.Run("AllSlotsBusy", func(t *testing.T) {
		g := newGate(nil, 0)
		p := newPool(t, g, passwords.PoolConfig{Slots: 1, Queue: 4})
		held := occupy(t, p, g, "busy")
		hash, ok, err := p.HashIfIdle(context.Background(), "pw")
		if err != nil || ok || hash != "" {
			t.Errorf("HashIfIdle = %q, %v, %v; want it skipped without error", hash, ok, err)
		}
		s := p.Stats()
		if s.Queued != 0 || s.Skipped != 1 {
			t.Errorf("stats = %+v, want nothing queued and one skipped", s)
		}
		g.release <- struct{}{}
		<-held
		if g.calls() != 1 {
			t.Errorf("%d hashes ran, want 1", g.calls())
		}
	})
}

// TestPoolCountsWaits: every admitted request's wait is in the histogram
// and the total.
func TestPoolCountsWaits(t *testing.T) {
	clock := &fakeClock{now: time.Now()}
	g := newGate(clock, time.Second)
	p := newPool(t, g, passwords.PoolConfig{Slots: 1, Queue: 4, MaxWait: time.Hour, Now: clock.Now})
	held := occupy(t, p, g, "busy")
	errc := make(chan error, 1)
	go func() { _, err := p.Hash(context.Background(), "waiter"); errc <- err }()
	waitFor(t, "queued", func() bool { return p.Stats().Queued == 1 })
	g.release <- struct{}{} // the busy hash costs a second, and the waiter waited it
	<-held
	g.release <- struct{}{}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	s := p.Stats()
	if s.Admitted != 2 || s.Wait.Count() != 2 || s.Waited != time.Second {
		t.Errorf("stats = %+v, want 2 admitted, 2 waits, 1s waited in all", s)
	}
}

func TestPoolConfigValidate(t *testing.T) {
	for _, tt := range []struct {
		name string
		cfg  passwords.PoolConfig
		ok   bool
	}{
		{"Defaults", passwords.PoolConfig{}, true},
		{"NoQueue", passwords.PoolConfig{Queue: passwords.NoQueue}, true},
		{"NegativeSlots", passwords.PoolConfig{Slots: -1}, false},
		{"QueueBelowNoQueue", passwords.PoolConfig{Queue: -2}, false},
		{"NegativeMaxWait", passwords.PoolConfig{MaxWait: -time.Second}, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := passwords.NewPool(&gate{}, tt.cfg)
			if (err == nil) != tt.ok {
				t.Errorf("NewPool error = %v, want ok=%v", err, tt.ok)
			}
		})
	}
}
