package main

import (
	"fmt"
	"io"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/HdrHistogram/hdrhistogram-go"
)

// Outcomes of a request besides the wire statuses (OK, UNAUTHORIZED, ...).
const (
	// statusTimeout: the client gave up waiting for the reply (-timeout).
	statusTimeout = "TIMEOUT"
	// statusError: the request could not be sent or its reply not read.
	statusError = "ERROR"
	// statusCanceled: the bench was interrupted while the request waited.
	statusCanceled = "CANCELED"
	// statusDropped: the request was due but not sent, because -max-outstanding
	// requests were in flight already.
	statusDropped = "DROPPED"
	// statusNoSession: a refresh was due but no session was idle (open
	// loop: each session has one refresh in flight at most), or none was
	// left (each ended by a failed refresh); not sent.
	statusNoSession = "NO_SESSION"
	// statusInactive: Introspect answered OK, but that the token is not
	// active.
	statusInactive = "INACTIVE"
)

// Latencies are recorded in microseconds from 1 µs to 60 s, to 3
// significant digits; longer ones count as 60 s.
const (
	histMin     = 1
	histMax     = 60_000_000
	histSigFigs = 3
)

// opStats is what one operation's requests came to.
type opStats struct {
	mu       sync.Mutex
	hist     *hdrhistogram.Histogram
	statuses map[string]int64
}

func newOpStats() *opStats {
	return &opStats{hist: hdrhistogram.New(histMin, histMax, histSigFigs), statuses: map[string]int64{}}
}

func (s *opStats) record(status string, latency time.Duration, sent bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.statuses[status]++
	if sent {
		us := min(max(latency.Microseconds(), histMin), histMax)
		_ = s.hist.RecordValue(us) // within the range: cannot fail
	}
}

// recorder tallies every request by operation. Requests due (open loop) or
// started (closed loop) before measureFrom are the warm-up's: they are
// counted apart, for the progress line only.
type recorder struct {
	measureFrom time.Time
	ops         map[string]*opStats
	all         *opStats // every measured request, for the progress line
	warm        *opStats // every warm-up request
}

func newRecorder(ops []string, measureFrom time.Time) *recorder {
	r := &recorder{measureFrom: measureFrom, ops: map[string]*opStats{}, all: newOpStats(), warm: newOpStats()}
	for _, op := range ops {
		r.ops[op] = newOpStats()
	}
	return r
}

// sent records a request that went out at or after due and finished at
// end with status.
func (r *recorder) sent(op, status string, due, end time.Time) {
	r.add(op, status, due, end.Sub(due), true)
}

// unsent records a request that was due but not sent, with why.
func (r *recorder) unsent(op, status string, due time.Time) {
	r.add(op, status, due, 0, false)
}

func (r *recorder) add(op, status string, due time.Time, latency time.Duration, sent bool) {
	if due.Before(r.measureFrom) {
		r.warm.record(status, latency, sent)
		return
	}
	r.ops[op].record(status, latency, sent)
	r.all.record(status, latency, sent)
}

// progress is a snapshot for the progress line: requests done (sent and
// finished, or not sent), those of them not OK (wrong passwords' expected
// UNAUTHORIZED included) and those not sent.
type progress struct {
	done, errors, dropped int64
	p50, p99              time.Duration
}

func (s *opStats) progress() progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	var p progress
	for status, n := range s.statuses {
		p.done += n
		switch status {
		case "OK", statusInactive:
		case statusDropped, statusNoSession:
			p.dropped += n
		default:
			p.errors += n
		}
	}
	p.p50 = time.Duration(s.hist.ValueAtQuantile(50)) * time.Microsecond
	p.p99 = time.Duration(s.hist.ValueAtQuantile(99)) * time.Microsecond
	return p
}

// benchReport is the result of a bench run, as -json prints it.
type benchReport struct {
	Started time.Time `json:"started"`
	// Mode is "open" (a target rate) or "closed" (concurrent callers).
	Mode           string           `json:"mode"`
	Rate           float64          `json:"rate,omitempty"`
	MaxOutstanding int              `json:"maxOutstanding,omitempty"`
	Concurrency    int              `json:"concurrency,omitempty"`
	Mix            string           `json:"mix"`
	Users          int              `json:"users"`
	WarmupSeconds  float64          `json:"warmupSeconds"`
	Seconds        float64          `json:"seconds"`
	TimeoutSeconds float64          `json:"timeoutSeconds"`
	Ops            []opReport       `json:"ops"`
	Total          opReport         `json:"total"`
	Argon2         *argon2Report    `json:"argon2,omitempty"`
	Worker         *workerMemory    `json:"worker,omitempty"`
	Machine        machineReport    `json:"machine"`
	Fractions      *argon2Fractions `json:"argon2Fractions,omitempty"`
}

// opReport is one operation's line of the report. Every request due is
// exactly one of: replied (under its status), timed out, failed to send
// (ERROR), or not sent (DROPPED, NO_SESSION).
type opReport struct {
	Op       string           `json:"op"`
	Due      int64            `json:"due"`
	Sent     int64            `json:"sent"`
	Replied  int64            `json:"replied"`
	Timeouts int64            `json:"timeouts"`
	Errors   int64            `json:"errors"`
	NotSent  int64            `json:"notSent"`
	Statuses map[string]int64 `json:"statuses"`
	// PerSecond is replies per second of the measured duration, OKPerSecond
	// the OK ones.
	PerSecond   float64       `json:"perSecond"`
	OKPerSecond float64       `json:"okPerSecond"`
	Latency     latencyReport `json:"latencyMs"`
}

// latencyReport is the latency of the requests sent, whatever their
// outcome (a timeout counts at the time the client gave up), from when
// each was due, in milliseconds.
type latencyReport struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50"`
	P90   float64 `json:"p90"`
	P99   float64 `json:"p99"`
	P999  float64 `json:"p99.9"`
	Max   float64 `json:"max"`
}

// argon2Report is the machine's raw argon2id rate at the worker's
// parameters, measured in the same run with the worker's hasher (the
// embedded rate): before the load and after it, as the machine's speed
// drifts. XCrypto is the same measured with golang.org/x/crypto/argon2,
// the reference a Go service would hash with: the worker's hasher is its
// own (passwords/internal/argon2).
type argon2Report struct {
	MemoryKiB   uint32 `json:"memoryKiB"`
	Time        uint32 `json:"time"`
	Parallelism uint8  `json:"parallelism"`
	Goroutines  int    `json:"goroutines"`
	argon2Rate
	XCrypto *argon2Rate `json:"xcrypto,omitempty"`
}

// argon2Rate is a raw argon2id rate: every hash of its Runs over their
// time.
type argon2Rate struct {
	Hashes    int64       `json:"hashes"`
	Seconds   float64     `json:"seconds"`
	PerSecond float64     `json:"perSecond"`
	Runs      []argon2Run `json:"runs,omitempty"`
}

// argon2Run is one measurement of an argon2Report.
type argon2Run struct {
	When      string  `json:"when"` // "before" or "after" the load
	Hashes    int64   `json:"hashes"`
	Seconds   float64 `json:"seconds"`
	PerSecond float64 `json:"perSecond"`
}

// combineArgon2 is the report of the measurements before and after the
// load, at the same parameters.
func combineArgon2(before, after *argon2Report) *argon2Report {
	r := *before
	r.argon2Rate = combineRates(before.argon2Rate, after.argon2Rate)
	r.XCrypto = nil
	if before.XCrypto != nil && after.XCrypto != nil {
		x := combineRates(*before.XCrypto, *after.XCrypto)
		r.XCrypto = &x
	}
	return &r
}

// combineRates is every hash of before and after over their time, with
// each as a run.
func combineRates(before, after argon2Rate) argon2Rate {
	r := argon2Rate{Hashes: before.Hashes + after.Hashes, Seconds: before.Seconds + after.Seconds}
	r.PerSecond = float64(r.Hashes) / r.Seconds
	r.Runs = []argon2Run{
		{When: "before", Hashes: before.Hashes, Seconds: before.Seconds, PerSecond: before.PerSecond},
		{When: "after", Hashes: after.Hashes, Seconds: after.Seconds, PerSecond: after.PerSecond},
	}
	return r
}

// String is the rate, with its measurements before and after the load.
func (r argon2Rate) String() string {
	detail := fmt.Sprintf("%d in %.1fs", r.Hashes, r.Seconds)
	if len(r.Runs) == 2 {
		detail += fmt.Sprintf(": %.1f/s before the load, %.1f/s after", r.Runs[0].PerSecond, r.Runs[1].PerSecond)
	}
	return fmt.Sprintf("%.1f hashes/s (%s)", r.PerSecond, detail)
}

// argon2Fractions relate the hashing operations served to the raw rate:
// Login is OK logins per second over it; Hashing counts every reply that
// cost a hash (logins of either outcome, wrong passwords and
// registrations).
type argon2Fractions struct {
	Login   float64 `json:"login"`
	Hashing float64 `json:"hashing"`
	// LoginXCrypto is OK logins per second over x/crypto's rate.
	LoginXCrypto float64 `json:"loginXCrypto,omitempty"`
}

// workerMemory is the worker's memory as /proc showed it during the run.
type workerMemory struct {
	PID int `json:"pid"`
	// VmHWMKiB is the process's peak resident set since it started.
	VmHWMKiB int64 `json:"vmHWMKiB"`
	// MaxVmRSSKiB is the largest resident set sampled during the run.
	MaxVmRSSKiB int64 `json:"maxVmRSSKiB"`
}

// machineReport says on what the figures were taken.
type machineReport struct {
	CPUs int `json:"cpus"`
	// LoadAverage is /proc/loadavg's one-minute figure before and after
	// the run: other load on the machine shows there.
	LoadBefore float64 `json:"loadBefore"`
	LoadAfter  float64 `json:"loadAfter"`
}

// opReport sums s over seconds of measurement.
func (s *opStats) report(op string, seconds float64) opReport {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := opReport{Op: op, Statuses: maps.Clone(s.statuses)}
	for status, n := range s.statuses {
		r.Due += n
		switch status {
		case statusTimeout:
			r.Timeouts += n
		case statusError, statusCanceled:
			r.Errors += n
		case statusDropped, statusNoSession:
			r.NotSent += n
		default:
			r.Replied += n
		}
	}
	r.Sent = r.Due - r.NotSent
	if seconds > 0 {
		r.PerSecond = float64(r.Replied) / seconds
		r.OKPerSecond = float64(s.statuses["OK"]) / seconds
	}
	ms := func(us int64) float64 { return float64(us) / 1000 }
	r.Latency = latencyReport{
		Count: s.hist.TotalCount(),
		P50:   ms(s.hist.ValueAtQuantile(50)),
		P90:   ms(s.hist.ValueAtQuantile(90)),
		P99:   ms(s.hist.ValueAtQuantile(99)),
		P999:  ms(s.hist.ValueAtQuantile(99.9)),
		Max:   ms(s.hist.Max()),
	}
	return r
}

// fractions relates the report's hashing throughput to the raw rate; none
// when the mix has no operation that hashes.
func (r *benchReport) fractions() *argon2Fractions {
	if r.Argon2 == nil || r.Argon2.PerSecond == 0 {
		return nil
	}
	var login, hashing float64
	hashes := false
	for _, op := range r.Ops {
		switch op.Op {
		case opLogin:
			login = op.OKPerSecond
			hashing += op.PerSecond
			hashes = true
		case opWrongPassword, opRegister:
			hashing += op.PerSecond
			hashes = true
		}
	}
	if !hashes {
		return nil
	}
	f := &argon2Fractions{Login: login / r.Argon2.PerSecond, Hashing: hashing / r.Argon2.PerSecond}
	if x := r.Argon2.XCrypto; x != nil && x.PerSecond > 0 {
		f.LoginXCrypto = login / x.PerSecond
	}
	return f
}

// writeTable prints the report for people: what was run, a line per
// operation and the total, then the argon2id and memory figures.
func (r *benchReport) writeTable(w io.Writer) error {
	var b strings.Builder
	b.WriteString(r.summary() + "\n\n")
	rows := [][]string{{"op", "sent", "replies/s", "OK/s", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms", "statuses"}}
	for _, op := range append(slices.Clone(r.Ops), r.Total) {
		l := op.Latency
		rows = append(rows, []string{op.Op, strconv.FormatInt(op.Sent, 10),
			fmt.Sprintf("%.1f", op.PerSecond), fmt.Sprintf("%.1f", op.OKPerSecond),
			fmt.Sprintf("%.1f", l.P50), fmt.Sprintf("%.1f", l.P90), fmt.Sprintf("%.1f", l.P99),
			fmt.Sprintf("%.1f", l.P999), fmt.Sprintf("%.1f", l.Max), formatStatuses(op.Statuses)})
	}
	writeColumns(&b, rows)
	if f := r.footer(); f != "" {
		b.WriteString("\n" + f + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// summary says what was run and on what, in two lines.
func (r *benchReport) summary() string {
	load := fmt.Sprintf("open loop at %g requests/s (at most %d outstanding)", r.Rate, r.MaxOutstanding)
	if r.Mode == "closed" {
		load = fmt.Sprintf("closed loop, %d callers", r.Concurrency)
	}
	return fmt.Sprintf("%s, mix %s, %d users; %gs measured after %gs warm-up; timeout %gs\n"+
		"machine: %d CPUs, load average %.2f before, %.2f after",
		load, r.Mix, r.Users, r.Seconds, r.WarmupSeconds, r.TimeoutSeconds,
		r.Machine.CPUs, r.Machine.LoadBefore, r.Machine.LoadAfter)
}

// footer gives the argon2id and memory figures, a line each, when there
// are any.
func (r *benchReport) footer() string {
	var lines []string
	if a := r.Argon2; a != nil {
		lines = append(lines, fmt.Sprintf("argon2id m=%d KiB t=%d p=%d on %d goroutines: %s",
			a.MemoryKiB, a.Time, a.Parallelism, a.Goroutines, a.argon2Rate))
		if a.XCrypto != nil {
			lines = append(lines, "x/crypto's argon2id at the same costs: "+a.XCrypto.String())
		}
	}
	if f := r.Fractions; f != nil {
		lines = append(lines, fmt.Sprintf("login OK/s is %.0f%% of the raw argon2id rate; every reply that hashed, %.0f%%", 100*f.Login, 100*f.Hashing))
		if f.LoginXCrypto > 0 {
			lines = append(lines, fmt.Sprintf("login OK/s is %.0f%% of x/crypto's argon2id rate", 100*f.LoginXCrypto))
		}
	}
	if m := r.Worker; m != nil {
		lines = append(lines, fmt.Sprintf("worker pid %d: peak RSS (VmHWM) %.1f MiB, largest RSS sampled during the run %.1f MiB",
			m.PID, float64(m.VmHWMKiB)/1024, float64(m.MaxVmRSSKiB)/1024))
	}
	return strings.Join(lines, "\n")
}

// writeColumns lays rows out in columns two spaces apart: the first and
// the last (names and statuses) aligned left, the figures right.
func writeColumns(b *strings.Builder, rows [][]string) {
	widths := make([]int, len(rows[0]))
	for _, row := range rows {
		for i, cell := range row {
			widths[i] = max(widths[i], len(cell))
		}
	}
	last := len(widths) - 1
	for _, row := range rows {
		for i, cell := range row {
			switch {
			case i == 0:
				fmt.Fprintf(b, "%-*s", widths[i], cell)
			case i == last:
				fmt.Fprintf(b, "  %s", cell)
			default:
				fmt.Fprintf(b, "  %*s", widths[i], cell)
			}
		}
		b.WriteString("\n")
	}
}

// writeMarkdown prints the report in Markdown, for the README's figures:
// what was run, the operations' table, the argon2id and memory figures.
func (r *benchReport) writeMarkdown(w io.Writer) error {
	var b strings.Builder
	b.WriteString(strings.ReplaceAll(r.summary(), "\n", "  \n") + "\n\n")
	b.WriteString("| op | sent | replies/s | OK/s | p50 ms | p90 ms | p99 ms | p99.9 ms | max ms | statuses |\n")
	b.WriteString("|---|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for _, op := range append(slices.Clone(r.Ops), r.Total) {
		l := op.Latency
		fmt.Fprintf(&b, "| %s | %d | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %.1f | %s |\n",
			op.Op, op.Sent, op.PerSecond, op.OKPerSecond, l.P50, l.P90, l.P99, l.P999, l.Max, formatStatuses(op.Statuses))
	}
	if f := r.footer(); f != "" {
		b.WriteString("\n" + strings.ReplaceAll(f, "\n", "  \n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// formatStatuses writes "OK=12 UNAUTHORIZED=3", OK first, then by name.
func formatStatuses(statuses map[string]int64) string {
	names := slices.Sorted(maps.Keys(statuses))
	if i := slices.Index(names, "OK"); i > 0 {
		names = slices.Insert(slices.Delete(names, i, i+1), 0, "OK")
	}
	parts := make([]string, len(names))
	for i, name := range names {
		parts[i] = fmt.Sprintf("%s=%d", name, statuses[name])
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, " ")
}
