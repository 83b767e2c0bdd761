// Package metrics exposes the worker's metrics in the Prometheus format:
// the requests it answers and how long they take, and how busy its
// consumer, password-hash pool, outbox relay and store pools are.
//
// Where a part of the worker already keeps counts (Stats methods), they
// are read at each scrape and nothing is added to its hot path; only the
// request counters and histograms are written as requests are answered.
// Label values come from fixed sets (operation names, wire statuses,
// dead-letter reasons, the worker's own request topics), never from what
// a record carries: no client id, user id, address or caller's topic.
package metrics

import (
	"errors"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/latency"
	"github.com/authworker/authworker/schemas"
)

// namespace starts every metric name of the worker's own.
const namespace = "authworker"

// Config names the sources read at each scrape. A nil source's metrics are
// left out.
type Config struct {
	// Consumer reports the consumer pool's load (consumers.Pool.Stats).
	Consumer func() ConsumerStats
	// Lag reports the consumer lag of the assigned partitions
	// (consumers.Lag.Partitions).
	Lag func() []PartitionLag
	// RequestTopics are the worker's request topics: the only topics a
	// lag is reported for, so that no other topic name becomes a label.
	RequestTopics []string
	// HashPool reports the password-hash admission pool. It is wired
	// where the pool is built; without it the hash pool's metrics are
	// absent.
	HashPool func() HashPoolStats
	// Outbox reports the outbox relay (postgres.OutboxRelay.Stats).
	Outbox func() OutboxStats
	// Postgres reports the PostgreSQL connection pool (pgxpool.Stat).
	Postgres func() PostgresStats
	// Redis reports the Redis connection pool (go-redis PoolStats).
	Redis func() RedisStats
	// Stores reports what is known of each store's health (health.Store).
	Stores func() []StoreStats
}

// StoreStats is what is known of one store's health.
type StoreStats struct {
	Name string // a fixed name: "postgres", "redis"
	// Down is set while the store is known to be down.
	Down bool
	// Downs counts the times it was found down.
	Downs uint64
}

// ConsumerStats is the consumer pool's load.
type ConsumerStats struct {
	// InFlight counts records handed to the workers and not finished.
	InFlight int
	// Backlog counts records fetched and waiting for room in a lane.
	Backlog int
	// Paused counts partitions whose fetching is paused for backpressure.
	Paused int
	// Pauses counts the times fetching was paused since the pool started.
	Pauses int
	// Assigned counts the partitions assigned to this worker.
	Assigned int
}

// PartitionLag is the lag of one assigned partition, in records.
type PartitionLag struct {
	Topic     string
	Partition int32
	Records   int64
}

// HashPoolStats is the password-hash admission pool's load: how many
// hashes may run at once, how many run and wait, how many were refused,
// and how long admitted ones waited.
type HashPoolStats struct {
	Slots  int
	Busy   int
	Queued int
	// Shed counts hash requests refused because the queue was full or
	// their wait too long, since the pool was built.
	Shed uint64
	// Wait counts the time each admitted hash waited for a slot.
	Wait latency.Snapshot
}

// OutboxStats is what the outbox relay has done since it was built.
type OutboxStats struct {
	Published, Batches, Failed, Sessions uint64
	Shards                               int
	// LastLag is the longest lag in the last acknowledged batch, and Lag
	// every acknowledged message's: from enqueueing to acknowledgement.
	LastLag time.Duration
	Lag     latency.Snapshot
}

// PostgresStats is the PostgreSQL connection pool's state.
type PostgresStats struct {
	Acquired, Idle, Total, Max int32
	// Acquires counts connections taken from the pool, EmptyAcquires
	// those that had to wait for one because none was idle, and
	// CanceledAcquires those whose context ended first.
	Acquires, EmptyAcquires, CanceledAcquires int64
	// AcquireDuration is the total time acquiring took, and
	// EmptyAcquireWait the part of it spent waiting for a connection.
	AcquireDuration, EmptyAcquireWait time.Duration
}

// RedisStats is the Redis connection pool's state.
type RedisStats struct {
	// Hits counts connections found idle in the pool, Misses those that
	// had to be made, Timeouts waits for one that timed out, Waits the
	// waits.
	Hits, Misses, Timeouts, Waits uint64
	WaitDuration                  time.Duration
	Total, Idle                   uint32
	// Stale counts connections removed from the pool as stale.
	Stale uint64
}

// Metrics holds the worker's registry. It is safe for concurrent use.
type Metrics struct {
	registry *prometheus.Registry
	requests *Requests
}

// New registers the worker's metrics, the Go runtime's and the process's
// in a registry of their own.
func New(cfg Config) (*Metrics, error) {
	reg := prometheus.NewRegistry()
	requests := newRequests()
	err := errors.Join(
		reg.Register(collectors.NewGoCollector()),
		reg.Register(collectors.NewProcessCollector(collectors.ProcessCollectorOpts{})),
		reg.Register(requests),
		reg.Register(newSources(cfg)),
	)
	if err != nil {
		return nil, err
	}
	return &Metrics{registry: reg, requests: requests}, nil
}

// Requests is what the request handler reports replies and dead letters
// to.
func (m *Metrics) Requests() *Requests { return m.requests }

// Handler serves the metrics in the Prometheus exposition formats.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{})
}

// Gatherer returns the registry, for tests and for embedding.
func (m *Metrics) Gatherer() prometheus.Gatherer { return m.registry }

// Label values standing for anything outside a fixed set.
const (
	unknownOp     = "unknown"
	otherReason   = "other"
	unknownStatus = string(schemas.StatusUnknown)
)

// Request durations run from an Introspect's milliseconds to a Login's
// hashing and reply floor, and ages add the time waited in the topic.
var (
	durationBuckets = []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30}
	ageBuckets      = append(slices.Clone(durationBuckets), 60, 300)
)

// Requests counts replies and dead letters, and observes how long
// requests took. It is safe for concurrent use.
type Requests struct {
	ops      map[string]bool
	total    *prometheus.CounterVec
	duration *prometheus.HistogramVec
	age      prometheus.Histogram
	dead     *prometheus.CounterVec
	reasons  map[string]bool
}

func newRequests() *Requests {
	ops := map[string]bool{}
	for _, name := range app.OperationNames() {
		ops[name] = true
	}
	r := &Requests{
		ops: ops,
		total: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "requests_total",
			Help: "Replies the broker acknowledged, by operation and wire status.",
		}, []string{"op", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_duration_seconds",
			Help:    "Time from taking a request record in hand to the broker's acknowledgement of its reply, by operation.",
			Buckets: durationBuckets,
		}, []string{"op"}),
		age: prometheus.NewHistogram(prometheus.HistogramOpts{
			Namespace: namespace, Name: "request_age_seconds",
			Help:    "Age of request records when their reply is acknowledged: from the record's Kafka timestamp, by the producer's or broker's clock, to the acknowledgement, by the worker's.",
			Buckets: ageBuckets,
		}),
		dead: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace, Name: "dead_letters_total",
			Help: "Request records sent to the dead-letter topic, by reason.",
		}, []string{"reason"}),
		reasons: make(map[string]bool),
	}
	for _, reason := range schemas.DeadLetterReasons() {
		r.reasons[reason] = true
	}
	return r
}

// Replied counts a reply the broker acknowledged to a request of
// operation op (an app.OperationName; anything else counts as "unknown")
// with wire status status (anything that is not a Status symbol counts as
// UNKNOWN), handled in handling; age is the record's age at the
// acknowledgement, observed when hasAge is set.
func (r *Requests) Replied(op string, status schemas.Status, handling, age time.Duration, hasAge bool) {
	if !r.ops[op] {
		op = unknownOp
	}
	s := string(status)
	if !status.Valid() {
		s = unknownStatus
	}
	r.total.WithLabelValues(op, s).Inc()
	r.duration.WithLabelValues(op).Observe(handling.Seconds())
	if hasAge {
		r.age.Observe(max(age, 0).Seconds())
	}
}

// DeadLettered counts a record the dead-letter topic acknowledged, with
// its reason (a schemas.DeadLetter* value; anything else counts as
// "other").
func (r *Requests) DeadLettered(reason string) {
	if !r.reasons[reason] {
		reason = otherReason
	}
	r.dead.WithLabelValues(reason).Inc()
}

// Describe implements prometheus.Collector.
func (r *Requests) Describe(ch chan<- *prometheus.Desc) {
	r.total.Describe(ch)
	r.duration.Describe(ch)
	r.age.Describe(ch)
	r.dead.Describe(ch)
}

// Collect implements prometheus.Collector.
func (r *Requests) Collect(ch chan<- prometheus.Metric) {
	r.total.Collect(ch)
	r.duration.Collect(ch)
	r.age.Collect(ch)
	r.dead.Collect(ch)
}

// partitionLabel formats a partition number for its label.
func partitionLabel(p int32) string { return strconv.FormatInt(int64(p), 10) }
