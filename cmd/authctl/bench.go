package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// benchConfig is what the bench command's flags ask for.
type benchConfig struct {
	mix            mix
	rate           float64 // open loop, requests/s; 0 with concurrency
	concurrency    int     // closed loop callers; 0 for the open loop
	maxOutstanding int
	warmup         time.Duration
	duration       time.Duration
	users          int
	argon2         time.Duration // how long to measure the raw rate; 0 skips it
	workerPID      int
	progress       time.Duration // between progress lines; 0 for none
	json, markdown bool
	out            string // a file to write the JSON report to as well
}

const (
	defaultBenchMix  = "login=70,introspect=20,refresh=10"
	defaultBenchRate = 20
)

func parseBenchFlags(args []string) (benchConfig, error) {
	var c benchConfig
	var mixFlag string
	var fs *flag.FlagSet
	if err := flags("bench", args, func(f *flag.FlagSet) {
		fs = f
		f.StringVar(&mixFlag, "mix", defaultBenchMix, "operations and their weights: "+strings.Join(benchOps, ", "))
		f.Float64Var(&c.rate, "rate", defaultBenchRate, "open loop (the default): requests per second, on a fixed timetable")
		f.IntVar(&c.concurrency, "concurrency", 0, "closed loop instead: this many callers, each sending its next request when its last is answered")
		f.IntVar(&c.maxOutstanding, "max-outstanding", 512, "open loop: requests in flight at most; a request due beyond that is dropped (counted, not sent)")
		f.DurationVar(&c.warmup, "warmup", 5*time.Second, "load before the measurement starts, not counted")
		f.DurationVar(&c.duration, "duration", 30*time.Second, "how long the measurement lasts")
		f.IntVar(&c.users, "users", 50, "accounts registered (and logged in once) before the load, for login, wrong-password, refresh and introspect")
		f.DurationVar(&c.argon2, "argon2", 3*time.Second, "how long to measure the raw argon2id rate at AUTH_ARGON2_*, before the load and again after it, with the worker's hasher and as long with x/crypto's; 0 skips it")
		f.IntVar(&c.workerPID, "worker-pid", 0, "a worker on this machine whose memory to sample from /proc")
		f.DurationVar(&c.progress, "progress", time.Second, "how often to print the progress line on standard error; 0 for never")
		f.BoolVar(&c.json, "json", false, "print the report as JSON")
		f.BoolVar(&c.markdown, "markdown", false, "print the report in Markdown")
		f.StringVar(&c.out, "out", "", "also write the report as JSON to this file")
	}); err != nil {
		return benchConfig{}, err
	}
	rateSet := false
	fs.Visit(func(f *flag.Flag) { rateSet = rateSet || f.Name == "rate" })
	var err error
	if c.mix, err = parseMix(mixFlag); err != nil {
		return benchConfig{}, err
	}
	switch {
	case c.concurrency < 0:
		return benchConfig{}, errors.New("bench: -concurrency must not be negative")
	case c.concurrency > 0 && rateSet:
		return benchConfig{}, errors.New("bench: -rate (open loop) and -concurrency (closed loop) exclude each other")
	case c.concurrency > 0:
		c.rate = 0
	case c.rate <= 0 || math.IsInf(c.rate, 0) || math.IsNaN(c.rate):
		return benchConfig{}, errors.New("bench: -rate must be a positive number of requests per second")
	}
	switch {
	case c.maxOutstanding < 1:
		return benchConfig{}, errors.New("bench: -max-outstanding must be at least 1")
	case c.duration <= 0:
		return benchConfig{}, errors.New("bench: -duration must be positive")
	case c.warmup < 0 || c.argon2 < 0 || c.progress < 0:
		return benchConfig{}, errors.New("bench: -warmup, -argon2 and -progress must not be negative")
	case c.users < 1 && c.needsUsers():
		return benchConfig{}, errors.New("bench: -users must be at least 1 for " + c.mix.String())
	case c.json && c.markdown:
		return benchConfig{}, errors.New("bench: -json and -markdown exclude each other")
	case c.workerPID < 0:
		return benchConfig{}, errors.New("bench: -worker-pid must be a process id")
	}
	return c, nil
}

// needsUsers reports whether the mix needs accounts made before the load.
func (c benchConfig) needsUsers() bool {
	return c.mix.has(opLogin) || c.mix.has(opWrongPassword) || c.mix.has(opRefresh) || c.mix.has(opIntrospect)
}

// needsSessions reports whether the mix needs a session per account.
func (c benchConfig) needsSessions() bool {
	return c.mix.has(opRefresh) || c.mix.has(opIntrospect)
}

// bench loads the worker with a mix of operations and reports throughput,
// statuses and latency per operation, the raw argon2id rate of this
// machine, and the worker's memory.
func bench(e *env, args []string) error {
	cfg, err := parseBenchFlags(args)
	if err != nil {
		return err
	}
	// Read before anything slow, so that a wrong setting fails at once.
	hasherCfg, err := argon2FromEnv(os.Getenv)
	if err != nil {
		return err
	}
	var sampler *memorySampler
	if cfg.workerPID != 0 {
		if sampler, err = startMemorySampler(cfg.workerPID, 100*time.Millisecond); err != nil {
			return err
		}
		defer sampler.stop()
	}
	c, err := e.connect()
	if err != nil {
		return err
	}
	defer c.Close()
	ctx := e.untimed // a bench is bounded by its flags, not by -timeout

	report := &benchReport{
		Started: time.Now().UTC(), Mix: cfg.mix.String(), Users: cfg.users, Mode: "open",
		WarmupSeconds: cfg.warmup.Seconds(), Seconds: cfg.duration.Seconds(), TimeoutSeconds: e.timeout.Seconds(),
		Machine: machineReport{CPUs: runtime.NumCPU(), LoadBefore: loadAverage()},
	}
	if cfg.concurrency > 0 {
		report.Mode, report.Concurrency = "closed", cfg.concurrency
	} else {
		report.Rate, report.MaxOutstanding = cfg.rate, cfg.maxOutstanding
	}
	b := &bencher{c: c, timeout: e.timeout, fix: newFixture(), waitForSession: cfg.concurrency > 0}
	if cfg.needsUsers() {
		fmt.Fprintf(e.stderr, "bench: registering %d accounts", cfg.users)
		if cfg.needsSessions() {
			fmt.Fprint(e.stderr, " and opening a session for each")
		}
		fmt.Fprintln(e.stderr, " (not measured)")
		if err := b.setup(ctx, cfg.users, cfg.needsSessions()); err != nil {
			return err
		}
	}

	// The raw argon2id rate drifts with the machine (its other tenants, its
	// clock): measured before the load and after it, and the two combined.
	var rawBefore *argon2Report
	if cfg.argon2 > 0 {
		if rawBefore, err = e.measureArgon2(ctx, hasherCfg, cfg.argon2, "before the load"); err != nil {
			return err
		}
	}

	rec, seconds := b.load(ctx, cfg, e.stderr)
	if ctx.Err() != nil {
		fmt.Fprintln(e.stderr, "bench: interrupted; the report covers what was measured")
	}
	report.Seconds = seconds
	for _, op := range cfg.mix.ops {
		report.Ops = append(report.Ops, rec.ops[op].report(op, seconds))
	}
	report.Total = rec.all.report("total", seconds)

	if cfg.argon2 > 0 && ctx.Err() == nil {
		rawAfter, err := e.measureArgon2(ctx, hasherCfg, cfg.argon2, "after the load")
		if err != nil {
			return err
		}
		report.Argon2 = combineArgon2(rawBefore, rawAfter)
		report.Fractions = report.fractions()
	}
	if sampler != nil {
		if report.Worker, err = sampler.stop(); err != nil {
			return err
		}
	}
	report.Machine.LoadAfter = loadAverage()
	if cfg.out != "" {
		if err := writeJSONFile(cfg.out, report); err != nil {
			return err
		}
	}
	switch {
	case cfg.json:
		return printJSON(e.stdout, report)
	case cfg.markdown:
		return report.writeMarkdown(e.stdout)
	}
	return report.writeTable(e.stdout)
}

// bencher sends the operations of a mix through one client.
type bencher struct {
	c       *client.Client
	timeout time.Duration
	fix     *fixture
	clock   clock
	// waitForSession makes a refresh wait for an idle session rather than
	// give up at once (the closed loop).
	waitForSession bool
}

// fixture is what the setup made for the load: accounts with one
// password, an access token per account for introspection, and the
// current refresh token of each session that is still alive.
type fixture struct {
	runID    string // names this run's accounts
	password string
	emails   []string
	access   []string
	// sessions holds the refresh token of each idle session. A refresh
	// takes one, so a session has one refresh outstanding at most and
	// each refresh presents its session's latest token; a session whose
	// refresh failed is not put back (its token may be spent already).
	sessions chan string
	live     atomic.Int64 // sessions not ended by a failed refresh
	next     atomic.Int64 // registrations made so far
}

func newFixture() *fixture {
	var id [4]byte
	rand.Read(id[:])
	var pw [18]byte
	rand.Read(pw[:])
	// Random, so the password policy takes it; never printed.
	return &fixture{runID: hex.EncodeToString(id[:]), password: base64.RawURLEncoding.EncodeToString(pw[:]), sessions: make(chan string)}
}

// newEmail returns an address no account has.
func (f *fixture) newEmail() string {
	return fmt.Sprintf("bench-%s-%d@example.com", f.runID, f.next.Add(1))
}

// setup registers n accounts and, when sessions is set, logs each in once,
// eight at a time. Logging in from the bench's own source (its client id)
// makes that source familiar to the account, so the wrong passwords the
// load sends from other sources never lock the right ones out.
func (b *bencher) setup(ctx context.Context, n int, sessions bool) error {
	f := b.fix
	f.emails = make([]string, n)
	f.access = make([]string, n)
	f.sessions = make(chan string, n)
	work := make(chan int)
	errs := make(chan error, n)
	var wg sync.WaitGroup
	for range min(n, 8) {
		wg.Go(func() {
			for i := range work {
				errs <- b.setupAccount(ctx, i, sessions)
			}
		})
	}
	for i := range n {
		work <- i
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bencher) setupAccount(ctx context.Context, i int, sessions bool) error {
	f := b.fix
	email := f.newEmail()
	err := client.RetryRateLimited(ctx, func() error {
		_, err := b.c.Register(ctx, email, f.password)
		return err
	})
	if err != nil {
		return fmt.Errorf("bench setup: register: %w", err)
	}
	f.emails[i] = email
	if !sessions {
		return nil
	}
	var res *client.LoginResult
	err = client.RetryRateLimited(ctx, func() error {
		var err error
		res, err = b.c.Login(ctx, email, f.password)
		return err
	})
	if err != nil {
		return fmt.Errorf("bench setup: login: %w", err)
	}
	f.access[i] = res.AccessToken
	f.sessions <- res.RefreshToken
	f.live.Add(1)
	return nil
}

// do sends one op and returns its outcome, and whether it was sent at all.
func (b *bencher) do(ctx context.Context, op string) (status string, sent bool) {
	f := b.fix
	var err error
	switch op {
	case opRegister:
		_, err = b.c.Register(ctx, f.newEmail(), f.password)
	case opLogin:
		_, err = b.c.Login(ctx, f.emails[mrand.IntN(len(f.emails))], f.password)
	case opWrongPassword:
		// From a source of its own each time (an address of the IPv6
		// documentation prefix, never contacted): strangers guessing,
		// which neither trip the per-source limit nor lock the account
		// for its owner's familiar source.
		_, err = b.c.Login(ctx, f.emails[mrand.IntN(len(f.emails))], f.password+"!", client.WithIP(strangerIP()))
	case opIntrospect:
		var res *client.IntrospectResult
		res, err = b.c.Introspect(ctx, f.access[mrand.IntN(len(f.access))], "access_token")
		if err == nil && !res.Active {
			return statusInactive, true
		}
	case opRefresh:
		return b.refresh(ctx)
	default: // parseMix admits no other
		return statusError, false
	}
	return statusOf(err), true
}

// refresh rotates the refresh token of an idle session. In the open loop
// it sends nothing when no session is idle (NO_SESSION: -users is too few
// for the refresh rate times its latency), so that the wait for one is not
// taken for the worker's latency; a closed-loop caller waits for one, up to
// the request timeout.
func (b *bencher) refresh(ctx context.Context) (status string, sent bool) {
	f := b.fix
	if f.live.Load() == 0 {
		return statusNoSession, false
	}
	var token string
	if b.waitForSession {
		t := time.NewTimer(b.timeout)
		defer t.Stop()
		select {
		case token = <-f.sessions:
		case <-t.C:
			return statusNoSession, false
		case <-ctx.Done():
			return statusNoSession, false
		}
	} else {
		select {
		case token = <-f.sessions:
		default:
			return statusNoSession, false
		}
	}
	res, err := b.c.Refresh(ctx, token)
	if err != nil {
		f.live.Add(-1)
		return statusOf(err), true
	}
	f.sessions <- res.RefreshToken
	return "OK", true
}

// strangerIP returns a random address of 2001:db8::/32 (RFC 3849), in a
// /64 of its own almost surely.
func strangerIP() string {
	return fmt.Sprintf("2001:db8:%x:%x::1", mrand.IntN(1<<16), mrand.IntN(1<<16))
}

// statusOf names the outcome of a request: the reply's status, TIMEOUT
// when no reply came in time, CANCELED when the bench was interrupted,
// ERROR when the request was not sent or its reply not read.
func statusOf(err error) string {
	if err == nil {
		return "OK"
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return statusTimeout // the client's, not a DEADLINE_EXCEEDED reply
	case errors.Is(err, context.Canceled):
		return statusCanceled
	}
	if de, ok := errors.AsType[*domain.Error](err); ok {
		return string(schemas.StatusOf(de.Code))
	}
	return statusError
}

// load runs the warm-up and the measurement, and returns what they came to
// and how many seconds were measured.
func (b *bencher) load(ctx context.Context, cfg benchConfig, progressOut io.Writer) (*recorder, float64) {
	clk := b.clock
	if clk == nil {
		clk = realClock{}
	}
	start := clk.Now()
	measureFrom := start.Add(cfg.warmup)
	end := measureFrom.Add(cfg.duration)
	rec := newRecorder(cfg.mix.ops, measureFrom)
	issue := func(op string, due time.Time) {
		status, sent := b.do(ctx, op)
		if sent {
			rec.sent(op, status, due, clk.Now())
		} else {
			rec.unsent(op, status, due)
		}
	}
	stopProgress := func() {}
	if cfg.progress > 0 {
		stopProgress = startProgress(progressOut, rec, clk, start, measureFrom, cfg.progress)
	}
	if cfg.concurrency > 0 {
		closedLoop{callers: cfg.concurrency, clock: clk}.run(ctx, end, func(started time.Time) {
			issue(cfg.mix.random(), started)
		})
	} else {
		openLoop{rate: cfg.rate, maxOutstanding: cfg.maxOutstanding, clock: clk}.run(ctx, start, end,
			func(due time.Time) { issue(cfg.mix.random(), due) },
			func(due time.Time) { rec.unsent(cfg.mix.random(), statusDropped, due) })
	}
	stopProgress()
	stopped := end
	if now := clk.Now(); ctx.Err() != nil && now.Before(end) {
		stopped = now // interrupted: what was measured until then
	}
	return rec, max(stopped.Sub(measureFrom).Seconds(), 0)
}

// startProgress prints a line every interval: the phase, the replies per
// second over the last interval, errors and drops, and the latency
// percentiles so far. On a terminal the line is rewritten in place.
func startProgress(w io.Writer, rec *recorder, clk clock, start, measureFrom time.Time, every time.Duration) (stop func()) {
	inPlace := false
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			inPlace = true
		}
	}
	out := bufio.NewWriter(w)
	done := make(chan struct{})
	finished := make(chan struct{})
	go func() {
		defer close(finished)
		t := time.NewTicker(every)
		defer t.Stop()
		var last progress
		lastPhase := ""
		for {
			select {
			case <-done:
				if inPlace {
					out.WriteString("\n")
					out.Flush()
				}
				return
			case <-t.C:
			}
			now := clk.Now()
			phase, stats := "warm-up", rec.warm
			if !now.Before(measureFrom) {
				phase, stats = "measure", rec.all
			}
			p := stats.progress()
			if phase != lastPhase {
				last, lastPhase = progress{}, phase
			}
			replies := float64((p.done-p.dropped)-(last.done-last.dropped)) / every.Seconds()
			latencies := "no latency yet"
			if p.done > p.dropped {
				latencies = fmt.Sprintf("p50 %s p99 %s so far", roundLatency(p.p50), roundLatency(p.p99))
			}
			line := fmt.Sprintf("bench %5.1fs %s: %7.1f replies/s, %d not OK, %d not sent, %s",
				now.Sub(start).Seconds(), phase, replies, p.errors, p.dropped, latencies)
			last = p
			if inPlace {
				out.WriteString("\r" + line + "\x1b[K")
			} else {
				out.WriteString(line + "\n")
			}
			out.Flush()
		}
	}()
	return func() {
		close(done)
		<-finished
	}
}

func roundLatency(d time.Duration) time.Duration {
	switch {
	case d >= 100*time.Millisecond:
		return d.Round(time.Millisecond)
	case d >= time.Millisecond:
		return d.Round(100 * time.Microsecond)
	}
	return d
}

// writeJSONFile writes v to path as indented JSON.
func writeJSONFile(path string, v any) error {
	var b strings.Builder
	if err := printJSON(&b, v); err != nil {
		return err
	}
	if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("bench: -out: %w", err)
	}
	return nil
}
