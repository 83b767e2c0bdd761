package metrics_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/latency"
	"github.com/authworker/authworker/metrics"
	"github.com/authworker/authworker/schemas"
)

func newMetrics(t *testing.T, cfg metrics.Config) *metrics.Metrics {
	t.Helper()
	m, err := metrics.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// fixedSources reports the same figures at every scrape.
func fixedSources() metrics.Config {
	var wait, lag latency.Histogram
	wait.Record(500 * time.Microsecond)
	wait.Record(3 * time.Millisecond)
	lag.Record(2 * time.Millisecond)
	return metrics.Config{
		Consumer: func() metrics.ConsumerStats {
			return metrics.ConsumerStats{InFlight: 3, Backlog: 2, Paused: 1, Pauses: 4, Assigned: 6}
		},
		Lag: func() []metrics.PartitionLag {
			return []metrics.PartitionLag{
				{Topic: "auth.request", Partition: 0, Records: 5},
				{Topic: "auth.request", Partition: 2, Records: 0},
				{Topic: "someone.elses", Partition: 1, Records: 9},
			}
		},
		RequestTopics: []string{"auth.request"},
		HashPool: func() metrics.HashPoolStats {
			return metrics.HashPoolStats{Slots: 2, Busy: 1, Queued: 7, Shed: 11, Wait: wait.Snapshot()}
		},
		Outbox: func() metrics.OutboxStats {
			return metrics.OutboxStats{Published: 40, Batches: 9, Failed: 1, Sessions: 2, Shards: 16, LastLag: 250 * time.Millisecond, Lag: lag.Snapshot()}
		},
		Postgres: func() metrics.PostgresStats {
			return metrics.PostgresStats{Acquired: 2, Idle: 3, Total: 5, Max: 10, Acquires: 100, EmptyAcquires: 4, CanceledAcquires: 1,
				AcquireDuration: 1500 * time.Millisecond, EmptyAcquireWait: 500 * time.Millisecond}
		},
		Redis: func() metrics.RedisStats {
			return metrics.RedisStats{Hits: 90, Misses: 10, Timeouts: 1, Waits: 3, WaitDuration: 250 * time.Millisecond, Total: 4, Idle: 3, Stale: 2}
		},
		Stores: func() []metrics.StoreStats {
			return []metrics.StoreStats{{Name: "postgres", Downs: 1}, {Name: "redis", Down: true, Downs: 3}}
		},
	}
}

// TestSourcesAreReadAtScrape: the figures of every source are exported as
// they are, with lag only for the worker's request topics.
func TestSourcesAreReadAtScrape(t *testing.T) {
	m := newMetrics(t, fixedSources())
	const want = `
# HELP authworker_consumer_in_flight Request records handed to the workers and not finished: in hand or queued in a lane.
# TYPE authworker_consumer_in_flight gauge
authworker_consumer_in_flight 3
# HELP authworker_consumer_backlog Request records fetched and waiting for room in their lane.
# TYPE authworker_consumer_backlog gauge
authworker_consumer_backlog 2
# HELP authworker_consumer_paused_partitions Partitions whose fetching is paused because a lane stayed full.
# TYPE authworker_consumer_paused_partitions gauge
authworker_consumer_paused_partitions 1
# HELP authworker_consumer_pauses_total Times fetching was paused for backpressure.
# TYPE authworker_consumer_pauses_total counter
authworker_consumer_pauses_total 4
# HELP authworker_consumer_assigned_partitions Request-topic partitions assigned to this worker.
# TYPE authworker_consumer_assigned_partitions gauge
authworker_consumer_assigned_partitions 6
# HELP authworker_consumer_lag_records Records of an assigned request-topic partition without a durable outcome: its high watermark less the offset last stored (or committed), as of librdkafka's last statistics report.
# TYPE authworker_consumer_lag_records gauge
authworker_consumer_lag_records{partition="0",topic="auth.request"} 5
authworker_consumer_lag_records{partition="2",topic="auth.request"} 0
# HELP authworker_hash_slots Password hashes the admission pool runs at once.
# TYPE authworker_hash_slots gauge
authworker_hash_slots 2
# HELP authworker_hash_busy Password hashes running now; divided by authworker_hash_slots, the pool's utilisation.
# TYPE authworker_hash_busy gauge
authworker_hash_busy 1
# HELP authworker_hash_queued Password hashes waiting for a slot.
# TYPE authworker_hash_queued gauge
authworker_hash_queued 7
# HELP authworker_hash_shed_total Password hashes refused because the pool's queue was full or their wait too long.
# TYPE authworker_hash_shed_total counter
authworker_hash_shed_total 11
# HELP authworker_outbox_published_total Outbox messages the broker acknowledged.
# TYPE authworker_outbox_published_total counter
authworker_outbox_published_total 40
# HELP authworker_outbox_failed_total Outbox messages that did not open or were not acknowledged, at every attempt.
# TYPE authworker_outbox_failed_total counter
authworker_outbox_failed_total 1
# HELP authworker_outbox_shards Outbox shards this worker's relay owns.
# TYPE authworker_outbox_shards gauge
authworker_outbox_shards 16
# HELP authworker_outbox_last_lag_seconds Longest time from enqueueing to acknowledgement in the relay's last acknowledged batch.
# TYPE authworker_outbox_last_lag_seconds gauge
authworker_outbox_last_lag_seconds 0.25
# HELP authworker_postgres_acquired_connections PostgreSQL connections in use.
# TYPE authworker_postgres_acquired_connections gauge
authworker_postgres_acquired_connections 2
# HELP authworker_postgres_max_connections Most PostgreSQL connections the pool may hold.
# TYPE authworker_postgres_max_connections gauge
authworker_postgres_max_connections 10
# HELP authworker_postgres_acquire_seconds_total Time spent taking PostgreSQL connections from the pool.
# TYPE authworker_postgres_acquire_seconds_total counter
authworker_postgres_acquire_seconds_total 1.5
# HELP authworker_postgres_empty_acquires_total Acquisitions that found no idle PostgreSQL connection and waited for one.
# TYPE authworker_postgres_empty_acquires_total counter
authworker_postgres_empty_acquires_total 4
# HELP authworker_postgres_canceled_acquires_total Acquisitions whose context ended before they got a PostgreSQL connection.
# TYPE authworker_postgres_canceled_acquires_total counter
authworker_postgres_canceled_acquires_total 1
# HELP authworker_redis_hits_total Times an idle Redis connection was found in the pool.
# TYPE authworker_redis_hits_total counter
authworker_redis_hits_total 90
# HELP authworker_redis_timeouts_total Waits for a Redis connection that timed out.
# TYPE authworker_redis_timeouts_total counter
authworker_redis_timeouts_total 1
# HELP authworker_redis_wait_seconds_total Time spent waiting for Redis connections.
# TYPE authworker_redis_wait_seconds_total counter
authworker_redis_wait_seconds_total 0.25
# HELP authworker_redis_idle_connections Idle Redis connections in the pool.
# TYPE authworker_redis_idle_connections gauge
authworker_redis_idle_connections 3
# HELP authworker_redis_stale_connections_total Redis connections removed from the pool as stale.
# TYPE authworker_redis_stale_connections_total counter
authworker_redis_stale_connections_total 2
# HELP authworker_store_down 1 while a store is known to be down: requests that need it are answered UNAVAILABLE at once.
# TYPE authworker_store_down gauge
authworker_store_down{store="postgres"} 0
authworker_store_down{store="redis"} 1
# HELP authworker_store_downs_total Times a store was found down.
# TYPE authworker_store_downs_total counter
authworker_store_downs_total{store="postgres"} 1
authworker_store_downs_total{store="redis"} 3
`
	names := []string{
		"authworker_consumer_in_flight", "authworker_consumer_backlog", "authworker_consumer_paused_partitions",
		"authworker_consumer_pauses_total", "authworker_consumer_assigned_partitions", "authworker_consumer_lag_records",
		"authworker_hash_slots", "authworker_hash_busy", "authworker_hash_queued", "authworker_hash_shed_total",
		"authworker_outbox_published_total", "authworker_outbox_failed_total", "authworker_outbox_shards", "authworker_outbox_last_lag_seconds",
		"authworker_postgres_acquired_connections", "authworker_postgres_max_connections", "authworker_postgres_acquire_seconds_total",
		"authworker_postgres_empty_acquires_total", "authworker_postgres_canceled_acquires_total",
		"authworker_redis_hits_total", "authworker_redis_timeouts_total", "authworker_redis_wait_seconds_total",
		"authworker_redis_idle_connections", "authworker_redis_stale_connections_total",
		"authworker_store_down", "authworker_store_downs_total",
	}
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), names...); err != nil {
		t.Error(err)
	}
}

// TestLatencyHistogramsExportExactly: a histogram of package latency is
// exported with its count, its sum, and exact counts at the bucket bounds.
func TestLatencyHistogramsExportExactly(t *testing.T) {
	m := newMetrics(t, fixedSources())
	h := family(t, m, "authworker_hash_wait_seconds").GetMetric()[0].GetHistogram()
	if h.GetSampleCount() != 2 || h.GetSampleSum() != 0.0035 {
		t.Errorf("count %d, sum %v; want 2 and 0.0035", h.GetSampleCount(), h.GetSampleSum())
	}
	for _, b := range h.GetBucket() {
		bound := time.Duration(b.GetUpperBound() * float64(time.Second))
		var want uint64
		switch {
		case bound >= latency.Bound(3*time.Millisecond)+time.Microsecond:
			want = 2
		case bound >= time.Millisecond:
			want = 1
		}
		if b.GetCumulativeCount() != want {
			t.Errorf("le=%v counts %d, want %d", b.GetUpperBound(), b.GetCumulativeCount(), want)
		}
	}
	if n := len(family(t, m, "authworker_outbox_lag_seconds").GetMetric()); n != 1 {
		t.Errorf("%d outbox lag histograms, want 1", n)
	}
}

// TestMissingSourcesAreLeftOut: without a hash pool (or any source), its
// metrics are absent rather than zero.
func TestMissingSourcesAreLeftOut(t *testing.T) {
	m := newMetrics(t, metrics.Config{})
	if n, err := testutil.GatherAndCount(m.Gatherer(), "authworker_hash_slots", "authworker_consumer_in_flight", "authworker_postgres_connections"); err != nil || n != 0 {
		t.Errorf("%d series of absent sources (err %v), want none", n, err)
	}
	if n, err := testutil.GatherAndCount(m.Gatherer(), "go_goroutines", "process_cpu_seconds_total"); err != nil || n == 0 {
		t.Errorf("Go and process collectors gave %d series (err %v), want some", n, err)
	}
}

// TestRequestsByOperationAndStatus: replies are counted by operation and
// status, their handling time and age observed.
func TestRequestsByOperationAndStatus(t *testing.T) {
	m := newMetrics(t, metrics.Config{})
	r := m.Requests()
	r.Replied("login", schemas.StatusOK, 80*time.Millisecond, time.Second, true)
	r.Replied("login", schemas.StatusUnauthorized, 260*time.Millisecond, 0, false)
	r.Replied("register", schemas.StatusOK, 60*time.Millisecond, -time.Second, true) // a producer's clock ahead of ours
	r.DeadLettered(schemas.DeadLetterUndecodable)
	r.DeadLettered(schemas.DeadLetterReplyUndeliverable)

	const want = `
# HELP authworker_requests_total Replies the broker acknowledged, by operation and wire status.
# TYPE authworker_requests_total counter
authworker_requests_total{op="login",status="OK"} 1
authworker_requests_total{op="login",status="UNAUTHORIZED"} 1
authworker_requests_total{op="register",status="OK"} 1
# HELP authworker_dead_letters_total Request records sent to the dead-letter topic, by reason.
# TYPE authworker_dead_letters_total counter
authworker_dead_letters_total{reason="reply_undeliverable"} 1
authworker_dead_letters_total{reason="undecodable"} 1
`
	if err := testutil.GatherAndCompare(m.Gatherer(), strings.NewReader(want), "authworker_requests_total", "authworker_dead_letters_total"); err != nil {
		t.Error(err)
	}
	for _, mt := range family(t, m, "authworker_request_duration_seconds").GetMetric() {
		want := map[string]uint64{"login": 2, "register": 1}[label(mt, "op")]
		if got := mt.GetHistogram().GetSampleCount(); got != want {
			t.Errorf("duration of %s counted %d times, want %d", label(mt, "op"), got, want)
		}
	}
	age := family(t, m, "authworker_request_age_seconds").GetMetric()[0].GetHistogram()
	if age.GetSampleCount() != 2 || age.GetSampleSum() != 1 {
		t.Errorf("age count %d sum %v, want 2 and 1 (a negative age counts as 0)", age.GetSampleCount(), age.GetSampleSum())
	}
}

// TestNoLabelFromRequestData: whatever strings reach the metrics, every
// label value is from a fixed set: operation names or "unknown", Status
// symbols, dead-letter reasons or "other", the configured request topics,
// partition numbers and store names.
func TestNoLabelFromRequestData(t *testing.T) {
	cfg := fixedSources()
	m := newMetrics(t, cfg)
	r := m.Requests()
	hostile := []string{"", "ada@example.com", "DROP TABLE users", "client-42", "auth.response.evil", "LOGIN", "login "}
	for _, s := range hostile {
		r.Replied(s, schemas.Status(s), time.Millisecond, time.Millisecond, true)
		r.DeadLettered(s)
	}
	allowed := map[string][]string{
		"op":        append(app.OperationNames(), "unknown"),
		"status":    {"OK", "INVALID", "UNAUTHORIZED", "CONFLICT", "NOT_FOUND", "RATE_LIMITED", "UNAVAILABLE", "DEADLINE_EXCEEDED", "INTERNAL", "UNKNOWN"},
		"reason":    append(schemas.DeadLetterReasons(), "other"),
		"topic":     cfg.RequestTopics,
		"partition": {"0", "1", "2", "3", "4", "5"},
		"store":     {string(app.Postgres), string(app.Redis)},
		"le":        nil, // bucket bounds, numbers
	}
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if !strings.HasPrefix(f.GetName(), "authworker_") {
			continue
		}
		for _, mt := range f.GetMetric() {
			for _, l := range mt.GetLabel() {
				set, known := allowed[l.GetName()]
				if !known || !slices.Contains(set, l.GetValue()) {
					t.Errorf("%s has label %s=%q, outside its fixed set", f.GetName(), l.GetName(), l.GetValue())
				}
			}
		}
	}
	if got := counter(t, m, "authworker_requests_total", "op", "unknown", "status", "UNKNOWN"); got != float64(len(hostile)) {
		t.Errorf("unknown/UNKNOWN counted %v, want %d", got, len(hostile))
	}
}

// TestHandlerServesTheExposition: the handler answers with the text
// format, which parses.
func TestHandlerServesTheExposition(t *testing.T) {
	m := newMetrics(t, fixedSources())
	m.Requests().Replied("introspect", schemas.StatusOK, time.Millisecond, time.Millisecond, true)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if rec.Code != http.StatusOK || !strings.HasPrefix(rec.Header().Get("Content-Type"), "text/plain") {
		t.Fatalf("status %d, Content-Type %q; want 200 and the text format", rec.Code, rec.Header().Get("Content-Type"))
	}
	fams := parse(t, rec.Body)
	if _, ok := fams["authworker_requests_total"]; !ok {
		t.Error("authworker_requests_total not exposed")
	}
}

func parse(t *testing.T, r io.Reader) map[string]*dto.MetricFamily {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

func family(t *testing.T, m *metrics.Metrics, name string) *dto.MetricFamily {
	t.Helper()
	fams, err := m.Gatherer().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() == name {
			return f
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

// counter returns the value of the series of counter name with the label
// pairs given.
func counter(t *testing.T, m *metrics.Metrics, name string, pairs ...string) float64 {
	t.Helper()
	for _, mt := range family(t, m, name).GetMetric() {
		match := true
		for i := 0; i < len(pairs); i += 2 {
			match = match && label(mt, pairs[i]) == pairs[i+1]
		}
		if match {
			return mt.GetCounter().GetValue()
		}
	}
	return 0
}
