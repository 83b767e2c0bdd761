package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/passwords"
)

func TestParseMix(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // the mix as String writes it
		wantErr string
	}{
		{"Default", defaultBenchMix, "login=70,refresh=10,introspect=20", ""},
		{"OneOp", "login=1", "login=1", ""},
		{"Every", "introspect=1, refresh=2,wrong-password=3 ,login=4,register=5", "register=5,login=4,wrong-password=3,refresh=2,introspect=1", ""},
		{"TrailingComma", "login=3,", "login=3", ""},
		{"Empty", "", "", "no operation"},
		{"UnknownOp", "login=1,logout=1", "", `unknown operation "logout"`},
		{"NoWeight", "login", "", "is not op=weight"},
		{"ZeroWeight", "login=0", "", "positive integer"},
		{"NegativeWeight", "login=-5", "", "positive integer"},
		{"FractionWeight", "login=0.5", "", "positive integer"},
		{"Twice", "login=1,login=2", "", "login given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := parseMix(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseMix(%q) = %v, %v; want an error containing %q", tt.in, m, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseMix(%q): %v", tt.in, err)
			}
			if got := m.String(); got != tt.want {
				t.Errorf("parseMix(%q) = %s, want %s", tt.in, got, tt.want)
			}
		})
	}
}

// TestMixPicksByWeight: over every draw from [0, total), each operation is
// picked exactly as often as its weight.
func TestMixPicksByWeight(t *testing.T) {
	m, err := parseMix("login=70,introspect=20,refresh=10")
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for n := range m.total {
		got[m.pick(n)]++
	}
	want := map[string]int{opLogin: 70, opIntrospect: 20, opRefresh: 10}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("picks %v, want %v", got, want)
	}
}

func TestBenchFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
		check   func(t *testing.T, c benchConfig)
	}{
		{"OpenLoopByDefault", nil, "", func(t *testing.T, c benchConfig) {
			if c.concurrency != 0 || c.rate != defaultBenchRate {
				t.Errorf("rate %v concurrency %d, want the open loop at %v/s", c.rate, c.concurrency, float64(defaultBenchRate))
			}
		}},
		{"ClosedLoop", []string{"-concurrency", "16"}, "", func(t *testing.T, c benchConfig) {
			if c.concurrency != 16 || c.rate != 0 {
				t.Errorf("rate %v concurrency %d, want 16 callers and no rate", c.rate, c.concurrency)
			}
		}},
		{"DoubleDashes", []string{"--rate", "5", "--mix", "register=1", "--users", "0", "--json"}, "", func(t *testing.T, c benchConfig) {
			if c.rate != 5 || !c.json || c.needsUsers() {
				t.Errorf("%+v: want rate 5, JSON, no users needed", c)
			}
		}},
		{"RateAndConcurrency", []string{"-rate", "5", "-concurrency", "2"}, "exclude each other", nil},
		{"ZeroRate", []string{"-rate", "0"}, "-rate must be a positive", nil},
		{"NoDuration", []string{"-duration", "0s"}, "-duration must be positive", nil},
		{"NegativeWarmup", []string{"-warmup", "-1s"}, "must not be negative", nil},
		{"NoOutstanding", []string{"-max-outstanding", "0"}, "-max-outstanding must be at least 1", nil},
		{"NoUsersForLogin", []string{"-mix", "login=1", "-users", "0"}, "-users must be at least 1", nil},
		{"JSONAndMarkdown", []string{"-json", "-markdown"}, "exclude each other", nil},
		{"BadMix", []string{"-mix", "login=x"}, "positive integer", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := parseBenchFlags(tt.args)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseBenchFlags(%v) = %v, want an error containing %q", tt.args, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("parseBenchFlags(%v): %v", tt.args, err)
			}
			tt.check(t, c)
		})
	}
}

// fakeClock moves only when the load generator sleeps. Before it moves to
// a time, settle(that time) lets the test wait until the requests due
// before it were handled, so that each one reads the clock at the time it
// was sent.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	sleeps int
	// stallAt is the sleep that overshoots by stall: the generator wakes
	// late, as a busy machine or a collector's pause makes it.
	stallAt int
	stall   time.Duration
	settle  func(at time.Time)
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Sleep(_ context.Context, d time.Duration) {
	if c.settle != nil {
		c.settle(c.Now().Add(d))
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	if c.sleeps == c.stallAt && c.stall > 0 {
		c.now = c.now.Add(c.stall)
	}
	c.sleeps++
}

// Advance moves the clock by d, as a request that takes d does.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

var epoch = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// settleUntil returns a settle function that waits until handled counts
// every request of the timetable (start, interval) due before the time
// the clock moves to.
func settleUntil(t *testing.T, start time.Time, interval time.Duration, handled *atomic.Int64) func(time.Time) {
	return func(at time.Time) {
		want := int64((at.Sub(start) + interval - 1) / interval)
		for deadline := time.Now().Add(5 * time.Second); handled.Load() < want; {
			if time.Now().After(deadline) {
				t.Errorf("settle: %d requests handled, want %d", handled.Load(), want)
				return
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
}

func TestOpenLoopTimetable(t *testing.T) {
	clk := &fakeClock{now: epoch, stallAt: -1}
	var handled atomic.Int64
	clk.settle = settleUntil(t, epoch, 100*time.Millisecond, &handled)
	var mu sync.Mutex
	var due, sent []time.Time
	openLoop{rate: 10, maxOutstanding: 100, clock: clk}.run(context.Background(), epoch, epoch.Add(2*time.Second),
		func(d time.Time) {
			mu.Lock()
			due, sent = append(due, d), append(sent, clk.Now())
			mu.Unlock()
			handled.Add(1)
		},
		func(time.Time) { t.Error("a request was dropped under the bound") })
	if len(due) != 20 {
		t.Fatalf("%d requests sent in 2s at 10/s, want 20", len(due))
	}
	for i := range due {
		want := epoch.Add(time.Duration(i) * 100 * time.Millisecond)
		if !due[i].Equal(want) || !sent[i].Equal(want) {
			t.Errorf("request %d due %v sent %v, want both at %v", i, due[i].Sub(epoch), sent[i].Sub(epoch), want.Sub(epoch))
		}
	}
}

// TestOpenLoopChargesStallsToTheRequestsHeldBack: a stall of the generator
// (its wake-up 1 s late) does not move the timetable; the requests due
// meanwhile go out at once when it wakes, each timed from its own due
// time, so the recorded latencies show the stall instead of hiding it
// (coordinated omission).
func TestOpenLoopChargesStallsToTheRequestsHeldBack(t *testing.T) {
	clk := &fakeClock{now: epoch, stallAt: 4, stall: time.Second} // wakes for request 5 at 1.5s
	var handled atomic.Int64
	clk.settle = settleUntil(t, epoch, 100*time.Millisecond, &handled)
	rec := newRecorder([]string{opLogin}, epoch)
	var mu sync.Mutex
	latencies := map[time.Duration]time.Duration{} // due - epoch -> latency
	openLoop{rate: 10, maxOutstanding: 100, clock: clk}.run(context.Background(), epoch, epoch.Add(2*time.Second),
		func(due time.Time) {
			now := clk.Now()
			rec.sent(opLogin, "OK", due, now)
			mu.Lock()
			latencies[due.Sub(epoch)] = now.Sub(due)
			mu.Unlock()
			handled.Add(1)
		},
		func(time.Time) { t.Error("a request was dropped under the bound") })

	if len(latencies) != 20 {
		t.Fatalf("%d requests sent, want 20: a stall must not thin the timetable", len(latencies))
	}
	for i := range 20 {
		dueAt := time.Duration(i) * 100 * time.Millisecond
		want := time.Duration(0)
		if i >= 5 && i <= 14 { // due from 0.5s up to 1.4s, sent at 1.5s
			want = 1500*time.Millisecond - dueAt
		}
		if got := latencies[dueAt]; got != want {
			t.Errorf("request due at %v: latency %v, want %v", dueAt, got, want)
		}
	}
	r := rec.ops[opLogin].report(opLogin, 2)
	if r.Latency.Count != 20 || math.Abs(r.Latency.Max-1000) > 1 {
		t.Errorf("latency %+v: want 20 requests, max 1000 ms (the first held back)", r.Latency)
	}
}

// TestOpenLoopDropsBeyondTheBound: with every request still in flight, the
// requests due beyond max-outstanding are dropped and counted, never
// queued: the timetable keeps its pace.
func TestOpenLoopDropsBeyondTheBound(t *testing.T) {
	clk := &fakeClock{now: epoch, stallAt: -1}
	var handled atomic.Int64
	clk.settle = settleUntil(t, epoch, 100*time.Millisecond, &handled)
	release := make(chan struct{})
	var fired, dropped atomic.Int64
	go func() {
		for handled.Load() < 20 {
			time.Sleep(time.Millisecond)
		}
		close(release)
	}()
	openLoop{rate: 10, maxOutstanding: 3, clock: clk}.run(context.Background(), epoch, epoch.Add(2*time.Second),
		func(time.Time) {
			fired.Add(1)
			handled.Add(1)
			<-release // still in flight when the rest fall due
		},
		func(time.Time) {
			dropped.Add(1)
			handled.Add(1)
		})
	if fired.Load() != 3 || dropped.Load() != 17 {
		t.Errorf("%d sent, %d dropped; want 3 sent (the bound) and 17 dropped", fired.Load(), dropped.Load())
	}
}

func TestOpenLoopStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	clk := &fakeClock{now: epoch, stallAt: -1}
	var n atomic.Int64
	settle := settleUntil(t, epoch, 100*time.Millisecond, &n)
	clk.settle = func(at time.Time) {
		settle(at)
		if n.Load() == 5 {
			cancel() // while waiting for the 6th
		}
	}
	openLoop{rate: 10, maxOutstanding: 10, clock: clk}.run(ctx, epoch, epoch.Add(time.Hour),
		func(time.Time) { n.Add(1) }, func(time.Time) { n.Add(1) })
	if got := n.Load(); got != 5 {
		t.Errorf("%d requests sent or dropped after cancelling while the 6th was not due, want 5", got)
	}
}

// TestClosedLoop: each caller sends its next request when the last is
// done, and none starts at or after the end.
func TestClosedLoop(t *testing.T) {
	clk := &fakeClock{now: epoch, stallAt: -1}
	end := epoch.Add(time.Second)
	var calls atomic.Int64
	var late atomic.Int64
	closedLoop{callers: 4, clock: clk}.run(context.Background(), end, func(started time.Time) {
		calls.Add(1)
		if !started.Before(end) {
			late.Add(1)
		}
		clk.Advance(10 * time.Millisecond)
	})
	if n := calls.Load(); n < 100 || n > 103 {
		t.Errorf("%d calls of 10ms in 1s, want 100 to 103 (the callers in flight at the end finish)", n)
	}
	if late.Load() != 0 {
		t.Errorf("%d calls started after the end", late.Load())
	}
}

// TestRecorderReport: every request due counts once, under its status;
// warm-up requests count apart; latencies are read from the histogram.
func TestRecorderReport(t *testing.T) {
	measureFrom := epoch.Add(time.Second)
	rec := newRecorder([]string{opLogin, opRefresh}, measureFrom)
	rec.sent(opLogin, "OK", epoch, epoch.Add(time.Hour)) // warm-up: not reported
	for i := range 100 {
		due := measureFrom.Add(time.Duration(i) * time.Millisecond)
		rec.sent(opLogin, "OK", due, due.Add(time.Duration(i+1)*time.Millisecond)) // 1..100 ms
	}
	due := measureFrom.Add(time.Second)
	rec.sent(opLogin, "UNAUTHORIZED", due, due.Add(250*time.Millisecond))
	rec.sent(opLogin, statusTimeout, due, due.Add(10*time.Second))
	rec.sent(opLogin, statusError, due, due.Add(time.Millisecond))
	rec.unsent(opLogin, statusDropped, due)
	rec.sent(opLogin, statusCanceled, due, due.Add(time.Millisecond))
	rec.unsent(opRefresh, statusNoSession, due)

	got := rec.ops[opLogin].report(opLogin, 10)
	want := opReport{
		Op: opLogin, Due: 105, Sent: 104, Replied: 101, Timeouts: 1, Errors: 2, NotSent: 1,
		Statuses:  map[string]int64{"OK": 100, "UNAUTHORIZED": 1, statusTimeout: 1, statusError: 1, statusDropped: 1, statusCanceled: 1},
		PerSecond: 10.1, OKPerSecond: 10,
	}
	gotLatency := got.Latency
	got.Latency = latencyReport{}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("report\n got %+v\nwant %+v", got, want)
	}
	// 104 sent: 1 to 100 ms, 250 ms, 10 s and two of 1 ms. HDR keeps 3
	// significant digits: within 0.1 %.
	for _, q := range []struct {
		name      string
		got, want float64
	}{{"p50", gotLatency.P50, 50}, {"p90", gotLatency.P90, 92}, {"p99", gotLatency.P99, 250}, {"max", gotLatency.Max, 10000}} {
		if math.Abs(q.got-q.want) > q.want/1000+0.001 {
			t.Errorf("%s = %v ms, want %v", q.name, q.got, q.want)
		}
	}
	if gotLatency.Count != 104 {
		t.Errorf("latency count %d, want 104 (every request sent)", gotLatency.Count)
	}
	if r := rec.warm.report("warm", 1); r.Due != 1 {
		t.Errorf("warm-up counted %d requests, want 1", r.Due)
	}
	if r := rec.ops[opRefresh].report(opRefresh, 10); r.Sent != 0 || r.NotSent != 1 || r.Latency.Count != 0 {
		t.Errorf("refresh %+v: want one not sent, no latency", r)
	}
}

func testReport() *benchReport {
	r := &benchReport{
		Started: epoch, Mode: "open", Rate: 20, MaxOutstanding: 512, Mix: "login=70,introspect=30", Users: 50,
		WarmupSeconds: 5, Seconds: 30, TimeoutSeconds: 10,
		Ops: []opReport{
			{Op: opLogin, Due: 420, Sent: 420, Replied: 420, Statuses: map[string]int64{"OK": 418, "UNAUTHORIZED": 2},
				PerSecond: 14, OKPerSecond: 13.933, Latency: latencyReport{Count: 420, P50: 41.5, P90: 80, P99: 120.25, P999: 180, Max: 181}},
			{Op: opIntrospect, Due: 180, Sent: 179, Replied: 179, NotSent: 1, Statuses: map[string]int64{"OK": 179, statusDropped: 1},
				PerSecond: 5.967, OKPerSecond: 5.967, Latency: latencyReport{Count: 179, P50: 3, P90: 4, P99: 9, P999: 12, Max: 12}},
		},
		Total: opReport{Op: "total", Due: 600, Sent: 599, Replied: 599, PerSecond: 19.967, OKPerSecond: 19.9, Statuses: map[string]int64{"OK": 597, "UNAUTHORIZED": 2, statusDropped: 1}},
		Argon2: &argon2Report{MemoryKiB: 19456, Time: 2, Parallelism: 1, Goroutines: 2,
			argon2Rate: argon2Rate{Hashes: 210, Seconds: 3, PerSecond: 70,
				Runs: []argon2Run{{When: "before", Hashes: 110, Seconds: 1.5, PerSecond: 73.3}, {When: "after", Hashes: 100, Seconds: 1.5, PerSecond: 66.7}}},
			XCrypto: &argon2Rate{Hashes: 105, Seconds: 3, PerSecond: 35,
				Runs: []argon2Run{{When: "before", Hashes: 54, Seconds: 1.5, PerSecond: 36}, {When: "after", Hashes: 51, Seconds: 1.5, PerSecond: 34}}}},
		Worker:  &workerMemory{PID: 42, VmHWMKiB: 204800, MaxVmRSSKiB: 153600},
		Machine: machineReport{CPUs: 2, LoadBefore: 1.5, LoadAfter: 2.25},
	}
	r.Fractions = r.fractions()
	return r
}

func TestReportFractions(t *testing.T) {
	f := testReport().Fractions
	if f == nil || math.Abs(f.Login-13.933/70) > 1e-9 || math.Abs(f.Hashing-14.0/70) > 1e-9 || math.Abs(f.LoginXCrypto-13.933/35) > 1e-9 {
		t.Errorf("fractions %+v, want login 13.933/70, hashing 14/70 and login of x/crypto's rate 13.933/35", f)
	}
	r := testReport()
	r.Argon2 = nil
	if r.fractions() != nil {
		t.Error("fractions without an argon2id rate, want none")
	}
	cheap := testReport()
	cheap.Ops = cheap.Ops[1:] // introspect only: nothing hashed
	if f := cheap.fractions(); f != nil {
		t.Errorf("fractions %+v of a mix that hashes nothing, want none", f)
	}
}

// The raw rate drifts with the machine: it is measured before the load
// and after it, and the reference is every hash of both over their time.
func TestCombineArgon2(t *testing.T) {
	cfg := argon2Report{MemoryKiB: 19456, Time: 2, Parallelism: 1, Goroutines: 2}
	before := cfg
	before.argon2Rate = argon2Rate{Hashes: 120, Seconds: 2, PerSecond: 60}
	after := cfg
	after.argon2Rate = argon2Rate{Hashes: 90, Seconds: 1, PerSecond: 90}
	before.XCrypto = &argon2Rate{Hashes: 40, Seconds: 1, PerSecond: 40}
	after.XCrypto = &argon2Rate{Hashes: 20, Seconds: 1, PerSecond: 20}
	got := combineArgon2(&before, &after)
	want := cfg
	want.argon2Rate = argon2Rate{Hashes: 210, Seconds: 3, PerSecond: 70,
		Runs: []argon2Run{{When: "before", Hashes: 120, Seconds: 2, PerSecond: 60}, {When: "after", Hashes: 90, Seconds: 1, PerSecond: 90}}}
	want.XCrypto = &argon2Rate{Hashes: 60, Seconds: 2, PerSecond: 30,
		Runs: []argon2Run{{When: "before", Hashes: 40, Seconds: 1, PerSecond: 40}, {When: "after", Hashes: 20, Seconds: 1, PerSecond: 20}}}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("combineArgon2 = %+v, want %+v", *got, want)
	}
}

func TestReportTable(t *testing.T) {
	var out bytes.Buffer
	if err := testReport().writeTable(&out); err != nil {
		t.Fatal(err)
	}
	got := out.String()
	for _, want := range []string{
		"open loop at 20 requests/s (at most 512 outstanding), mix login=70,introspect=30, 50 users; 30s measured after 5s warm-up; timeout 10s",
		"machine: 2 CPUs, load average 1.50 before, 2.25 after",
		"op          sent  replies/s  OK/s  p50 ms  p90 ms  p99 ms  p99.9 ms  max ms  statuses\n" +
			"login        420       14.0  13.9    41.5    80.0   120.2     180.0   181.0  OK=418 UNAUTHORIZED=2\n" +
			"introspect   179        6.0   6.0     3.0     4.0     9.0      12.0    12.0  OK=179 DROPPED=1\n" +
			"total        599       20.0  19.9     0.0     0.0     0.0       0.0     0.0  OK=597 DROPPED=1 UNAUTHORIZED=2\n",
		"argon2id m=19456 KiB t=2 p=1 on 2 goroutines: 70.0 hashes/s (210 in 3.0s: 73.3/s before the load, 66.7/s after)",
		"x/crypto's argon2id at the same costs: 35.0 hashes/s (105 in 3.0s: 36.0/s before the load, 34.0/s after)",
		"login OK/s is 20% of the raw argon2id rate; every reply that hashed, 20%",
		"login OK/s is 40% of x/crypto's argon2id rate",
		"worker pid 42: peak RSS (VmHWM) 200.0 MiB, largest RSS sampled during the run 150.0 MiB",
	} {
		if !strings.Contains(got, want) {
			t.Errorf("table lacks %q:\n%s", want, got)
		}
	}
	closed := testReport()
	closed.Mode, closed.Rate, closed.Concurrency, closed.Argon2, closed.Fractions, closed.Worker = "closed", 0, 16, nil, nil, nil
	out.Reset()
	if err := closed.writeTable(&out); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); !strings.HasPrefix(got, "closed loop, 16 callers,") || strings.Contains(got, "argon2id") || strings.Contains(got, "worker pid") {
		t.Errorf("closed-loop table without argon2id or worker figures:\n%s", got)
	}
}

func TestReportMarkdown(t *testing.T) {
	var out bytes.Buffer
	if err := testReport().writeMarkdown(&out); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	want := []string{
		"open loop at 20 requests/s (at most 512 outstanding), mix login=70,introspect=30, 50 users; 30s measured after 5s warm-up; timeout 10s  ",
		"machine: 2 CPUs, load average 1.50 before, 2.25 after",
		"",
		"| op | sent | replies/s | OK/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | statuses |",
		"|---|---:|---:|---:|---:|---:|---:|---:|---:|---|",
		"| login | 420 | 14.0 | 13.9 | 41.5 | 80.0 | 120.2 | 180.0 | 181.0 | OK=418 UNAUTHORIZED=2 |",
		"| introspect | 179 | 6.0 | 6.0 | 3.0 | 4.0 | 9.0 | 12.0 | 12.0 | OK=179 DROPPED=1 |",
		"| total | 599 | 20.0 | 19.9 | 0.0 | 0.0 | 0.0 | 0.0 | 0.0 | OK=597 DROPPED=1 UNAUTHORIZED=2 |",
		"",
		"argon2id m=19456 KiB t=2 p=1 on 2 goroutines: 70.0 hashes/s (210 in 3.0s: 73.3/s before the load, 66.7/s after)  ",
		"x/crypto's argon2id at the same costs: 35.0 hashes/s (105 in 3.0s: 36.0/s before the load, 34.0/s after)  ",
		"login OK/s is 20% of the raw argon2id rate; every reply that hashed, 20%  ",
		"login OK/s is 40% of x/crypto's argon2id rate  ",
		"worker pid 42: peak RSS (VmHWM) 200.0 MiB, largest RSS sampled during the run 150.0 MiB",
	}
	if !reflect.DeepEqual(lines, want) {
		t.Errorf("markdown\n got %q\nwant %q", lines, want)
	}
}

func TestReportJSON(t *testing.T) {
	var out bytes.Buffer
	if err := printJSON(&out, testReport()); err != nil {
		t.Fatal(err)
	}
	var got struct {
		Mode string
		Ops  []struct {
			Op        string
			Sent      int64
			Statuses  map[string]int64
			LatencyMs map[string]float64
		}
		Argon2          struct{ PerSecond float64 }
		Argon2Fractions struct{ Login float64 }
		Worker          struct{ VmHWMKiB int64 }
	}
	if err := json.Unmarshal(out.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	if got.Mode != "open" || len(got.Ops) != 2 || got.Ops[0].Op != opLogin || got.Ops[0].Sent != 420 ||
		got.Ops[0].Statuses["UNAUTHORIZED"] != 2 || got.Argon2.PerSecond != 70 || got.Worker.VmHWMKiB != 204800 {
		t.Errorf("JSON read back as %+v", got)
	}
	if l := got.Ops[0].LatencyMs; l["p50"] != 41.5 || l["p99.9"] != 180 || l["max"] != 181 || l["count"] != 420 {
		t.Errorf("latencyMs %v, want p50 41.5, p99.9 180, max 181, count 420", l)
	}
	if math.Abs(got.Argon2Fractions.Login-13.933/70) > 1e-9 {
		t.Errorf("argon2Fractions.login %v", got.Argon2Fractions.Login)
	}
}

func TestStatusOf(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"OK", nil, "OK"},
		{"Unauthorized", &domain.Error{Code: domain.CodeUnauthorized}, "UNAUTHORIZED"},
		{"RateLimited", &domain.Error{Code: domain.CodeRateLimited}, "RATE_LIMITED"},
		{"WorkerDeadline", &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "deadline exceeded"}, "DEADLINE_EXCEEDED"},
		{"ClientTimeout", &domain.Error{Code: domain.CodeDeadlineExceeded, Err: context.DeadlineExceeded}, statusTimeout},
		{"SendTimeout", fmt.Errorf("client: send request: %w", context.DeadlineExceeded), statusTimeout},
		{"Interrupted", &domain.Error{Code: domain.CodeDeadlineExceeded, Err: context.Canceled}, statusCanceled},
		{"Transport", errors.New("client: decode reply: bad"), statusError},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.err); got != tt.want {
				t.Errorf("statusOf(%v) = %s, want %s", tt.err, got, tt.want)
			}
		})
	}
}

func TestArgon2FromEnv(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		want    passwords.HasherConfig
		wantErr string
	}{
		{"Defaults", nil, passwords.HasherConfig{}, ""},
		{"EmptyIsDefault", map[string]string{"AUTH_ARGON2_TIME": ""}, passwords.HasherConfig{}, ""},
		{"Set", map[string]string{"AUTH_ARGON2_MEMORY_KIB": "65536", "AUTH_ARGON2_TIME": "3", "AUTH_ARGON2_PARALLELISM": "2"},
			passwords.HasherConfig{MemoryKiB: 65536, Time: 3, Parallelism: 2}, ""},
		{"NotANumber", map[string]string{"AUTH_ARGON2_TIME": "two"}, passwords.HasherConfig{}, "AUTH_ARGON2_TIME must be an integer"},
		{"Zero", map[string]string{"AUTH_ARGON2_PARALLELISM": "0"}, passwords.HasherConfig{}, "AUTH_ARGON2_PARALLELISM must be an integer from 1 to 255"},
		{"BelowOWASP", map[string]string{"AUTH_ARGON2_MEMORY_KIB": "8192"}, passwords.HasherConfig{}, "OWASP minimum"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := argon2FromEnv(func(name string) string { return tt.env[name] })
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("argon2FromEnv = %v, want an error containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Errorf("argon2FromEnv = %+v, %v; want %+v", got, err, tt.want)
			}
		})
	}
}

func TestParseProcStatus(t *testing.T) {
	const status = "Name:\tauthworker\nVmPeak:\t 2000000 kB\nVmHWM:\t  204800 kB\nVmRSS:\t  153600 kB\nThreads:\t12\n"
	hwm, rss, err := parseProcStatus(status)
	if err != nil || hwm != 204800 || rss != 153600 {
		t.Errorf("parseProcStatus = %d, %d, %v; want 204800, 153600", hwm, rss, err)
	}
	if _, _, err := parseProcStatus("Name:\tkthreadd\nThreads:\t1\n"); err == nil {
		t.Error("a status without VmHWM parsed")
	}
}
