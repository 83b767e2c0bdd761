package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The operations authctl bench can send, in the order its table lists them.
const (
	opRegister      = "register"
	opLogin         = "login"
	opWrongPassword = "wrong-password"
	opRefresh       = "refresh"
	opIntrospect    = "introspect"
)

var benchOps = []string{opRegister, opLogin, opWrongPassword, opRefresh, opIntrospect}

// mix is the weighted choice of operations a bench sends.
type mix struct {
	ops     []string // in benchOps order
	weights []int
	total   int
}

// parseMix reads "login=70,introspect=20,refresh=10": each operation at
// most once, each weight a positive integer.
func parseMix(s string) (mix, error) {
	weights := map[string]int{}
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		name, w, ok := strings.Cut(part, "=")
		name = strings.TrimSpace(name)
		if !ok {
			return mix{}, fmt.Errorf("-mix: %q is not op=weight", part)
		}
		if !slices.Contains(benchOps, name) {
			return mix{}, fmt.Errorf("-mix: unknown operation %q (%s)", name, strings.Join(benchOps, ", "))
		}
		if _, dup := weights[name]; dup {
			return mix{}, fmt.Errorf("-mix: %s given twice", name)
		}
		n, err := strconv.Atoi(strings.TrimSpace(w))
		if err != nil || n <= 0 {
			return mix{}, fmt.Errorf("-mix: the weight of %s must be a positive integer, got %q", name, w)
		}
		weights[name] = n
	}
	if len(weights) == 0 {
		return mix{}, fmt.Errorf("-mix: no operation given")
	}
	var m mix
	for _, op := range benchOps {
		if w, ok := weights[op]; ok {
			m.ops = append(m.ops, op)
			m.weights = append(m.weights, w)
			m.total += w
		}
	}
	return m, nil
}

// has reports whether the mix sends op.
func (m mix) has(op string) bool { return slices.Contains(m.ops, op) }

// pick returns the operation that n, drawn from [0, total), falls on.
func (m mix) pick(n int) string {
	for i, w := range m.weights {
		if n < w {
			return m.ops[i]
		}
		n -= w
	}
	return m.ops[len(m.ops)-1]
}

// random picks an operation at random by weight.
func (m mix) random() string { return m.pick(rand.IntN(m.total)) }

// String writes the mix as -mix reads it.
func (m mix) String() string {
	parts := make([]string, len(m.ops))
	for i, op := range m.ops {
		parts[i] = op + "=" + strconv.Itoa(m.weights[i])
	}
	return strings.Join(parts, ",")
}

// clock is the time the load generators keep; tests give them a fake one.
type clock interface {
	Now() time.Time
	// Sleep waits for d, or until ctx ends.
	Sleep(ctx context.Context, d time.Duration)
}

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// scheduledAt is the time the open loop's i-th request is due: a fixed
// timetable from start, whatever happened to the requests before it.
func scheduledAt(start time.Time, rate float64, i int64) time.Time {
	return start.Add(time.Duration(float64(i) * float64(time.Second) / rate))
}

// openLoop sends requests at a target rate on a fixed timetable, as
// independent users would, however slowly the server answers. A request
// is timed from when it was due, not from when it went out, so a stall of
// the generator or the server is charged to every request it held back
// (coordinated omission is not let flatter the figures). At most
// maxOutstanding requests are in flight; a request due beyond that is not
// sent and counted as dropped, so an overloaded server shows as drops and
// never as a slower timetable.
type openLoop struct {
	rate           float64 // requests per second
	maxOutstanding int
	clock          clock
}

// run sends every request due from start until end: fire(due) runs in a
// goroutine of its own for each request sent, and drop(due) for each one
// over the bound. It returns once every request sent has finished.
func (o openLoop) run(ctx context.Context, start, end time.Time, fire, drop func(due time.Time)) {
	slots := make(chan struct{}, o.maxOutstanding)
	var wg sync.WaitGroup
	defer wg.Wait()
	for i := int64(0); ; i++ {
		due := scheduledAt(start, o.rate, i)
		if !due.Before(end) {
			return
		}
		// A late wake-up sends every request due meanwhile at once, each
		// still timed from its own due time.
		if wait := due.Sub(o.clock.Now()); wait > 0 {
			o.clock.Sleep(ctx, wait)
		}
		if ctx.Err() != nil {
			return
		}
		select {
		case slots <- struct{}{}:
			wg.Go(func() {
				defer func() { <-slots }()
				fire(due)
			})
		default:
			drop(due)
		}
	}
}

// closedLoop runs callers that each send a request, wait for its reply and
// send the next: the most the server serves at that concurrency. Its
// latencies are those of requests that only ever wait for their own
// caller, so they flatter the server under overload; use the open loop for
// latency figures.
type closedLoop struct {
	callers int
	clock   clock
}

// run calls call(started) from each caller until end; it returns once
// every call has finished.
func (c closedLoop) run(ctx context.Context, end time.Time, call func(started time.Time)) {
	var wg sync.WaitGroup
	for range c.callers {
		wg.Go(func() {
			for ctx.Err() == nil {
				started := c.clock.Now()
				if !started.Before(end) {
					return
				}
				call(started)
			}
		})
	}
	wg.Wait()
}
