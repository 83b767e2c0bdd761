package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/authworker/authworker/latency"
)

// latencyBuckets are the bounds at which histograms kept by package latency
// are exported: about 1, 2.5, 5, 10 ... ms, each raised to the bucket bound
// of latency at or above it (at most 1/8 higher), where its counts are
// exact.
var latencyBuckets = func() []time.Duration {
	nice := []time.Duration{
		time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond,
		10 * time.Millisecond, 25 * time.Millisecond, 50 * time.Millisecond,
		100 * time.Millisecond, 250 * time.Millisecond, 500 * time.Millisecond,
		time.Second, 2500 * time.Millisecond, 5 * time.Second, 10 * time.Second, 30 * time.Second,
	}
	out := make([]time.Duration, len(nice))
	for i, d := range nice {
		out[i] = latency.Bound(d)
	}
	return out
}()

// sources reads the Stats of the worker's parts at each scrape.
type sources struct {
	cfg    Config
	topics map[string]bool

	inFlight, backlog, paused, pauses, assigned, lag *prometheus.Desc

	hashSlots, hashBusy, hashQueued, hashShed, hashWait *prometheus.Desc

	outboxPublished, outboxBatches, outboxFailed, outboxSessions, outboxShards, outboxLastLag, outboxLag *prometheus.Desc

	pgAcquired, pgIdle, pgTotal, pgMax, pgAcquires, pgAcquireSeconds, pgEmpty, pgEmptyWait, pgCanceled *prometheus.Desc

	redisHits, redisMisses, redisTimeouts, redisWaits, redisWaitSeconds, redisTotal, redisIdle, redisStale *prometheus.Desc

	storeDown, storeDowns *prometheus.Desc
}

func newSources(cfg Config) *sources {
	desc := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	topics := map[string]bool{}
	for _, t := range cfg.RequestTopics {
		topics[t] = true
	}
	return &sources{
		cfg:    cfg,
		topics: topics,

		inFlight: desc("consumer_in_flight", "Request records handed to the workers and not finished: in hand or queued in a lane."),
		backlog:  desc("consumer_backlog", "Request records fetched and waiting for room in their lane."),
		paused:   desc("consumer_paused_partitions", "Partitions whose fetching is paused because a lane stayed full."),
		pauses:   desc("consumer_pauses_total", "Times fetching was paused for backpressure."),
		assigned: desc("consumer_assigned_partitions", "Request-topic partitions assigned to this worker."),
		lag:      desc("consumer_lag_records", "Records of an assigned request-topic partition without a durable outcome: its high watermark less the offset last stored (or committed), as of librdkafka's last statistics report.", "topic", "partition"),

		hashSlots:  desc("hash_slots", "Password hashes the admission pool runs at once."),
		hashBusy:   desc("hash_busy", "Password hashes running now; divided by authworker_hash_slots, the pool's utilisation."),
		hashQueued: desc("hash_queued", "Password hashes waiting for a slot."),
		hashShed:   desc("hash_shed_total", "Password hashes refused because the pool's queue was full or their wait too long."),
		hashWait:   desc("hash_wait_seconds", "Time admitted password hashes waited for a slot."),

		outboxPublished: desc("outbox_published_total", "Outbox messages the broker acknowledged."),
		outboxBatches:   desc("outbox_batches_total", "Batches the outbox relay handed to the producer."),
		outboxFailed:    desc("outbox_failed_total", "Outbox messages that did not open or were not acknowledged, at every attempt."),
		outboxSessions:  desc("outbox_sessions_total", "Database sessions the outbox relay opened; more than one means it reconnected."),
		outboxShards:    desc("outbox_shards", "Outbox shards this worker's relay owns."),
		outboxLastLag:   desc("outbox_last_lag_seconds", "Longest time from enqueueing to acknowledgement in the relay's last acknowledged batch."),
		outboxLag:       desc("outbox_lag_seconds", "Time from a message's enqueueing (database clock) to the broker's acknowledgement (relay's clock)."),

		pgAcquired:       desc("postgres_acquired_connections", "PostgreSQL connections in use."),
		pgIdle:           desc("postgres_idle_connections", "Idle PostgreSQL connections in the pool."),
		pgTotal:          desc("postgres_connections", "PostgreSQL connections in the pool: in use, idle and being made."),
		pgMax:            desc("postgres_max_connections", "Most PostgreSQL connections the pool may hold."),
		pgAcquires:       desc("postgres_acquires_total", "PostgreSQL connections taken from the pool."),
		pgAcquireSeconds: desc("postgres_acquire_seconds_total", "Time spent taking PostgreSQL connections from the pool."),
		pgEmpty:          desc("postgres_empty_acquires_total", "Acquisitions that found no idle PostgreSQL connection and waited for one."),
		pgEmptyWait:      desc("postgres_empty_acquire_wait_seconds_total", "Time acquisitions waited because no PostgreSQL connection was idle."),
		pgCanceled:       desc("postgres_canceled_acquires_total", "Acquisitions whose context ended before they got a PostgreSQL connection."),

		redisHits:        desc("redis_hits_total", "Times an idle Redis connection was found in the pool."),
		redisMisses:      desc("redis_misses_total", "Times no idle Redis connection was found in the pool."),
		redisTimeouts:    desc("redis_timeouts_total", "Waits for a Redis connection that timed out."),
		redisWaits:       desc("redis_waits_total", "Times a Redis connection was waited for."),
		redisWaitSeconds: desc("redis_wait_seconds_total", "Time spent waiting for Redis connections."),
		redisTotal:       desc("redis_connections", "Redis connections in the pool."),
		redisIdle:        desc("redis_idle_connections", "Idle Redis connections in the pool."),
		redisStale:       desc("redis_stale_connections_total", "Redis connections removed from the pool as stale."),

		storeDown:  desc("store_down", "1 while a store is known to be down: requests that need it are answered UNAVAILABLE at once.", "store"),
		storeDowns: desc("store_downs_total", "Times a store was found down.", "store"),
	}
}

// Describe implements prometheus.Collector.
func (s *sources) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{
		s.inFlight, s.backlog, s.paused, s.pauses, s.assigned, s.lag,
		s.hashSlots, s.hashBusy, s.hashQueued, s.hashShed, s.hashWait,
		s.outboxPublished, s.outboxBatches, s.outboxFailed, s.outboxSessions, s.outboxShards, s.outboxLastLag, s.outboxLag,
		s.pgAcquired, s.pgIdle, s.pgTotal, s.pgMax, s.pgAcquires, s.pgAcquireSeconds, s.pgEmpty, s.pgEmptyWait, s.pgCanceled,
		s.redisHits, s.redisMisses, s.redisTimeouts, s.redisWaits, s.redisWaitSeconds, s.redisTotal, s.redisIdle, s.redisStale,
		s.storeDown, s.storeDowns,
	} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: each source is read once.
func (s *sources) Collect(ch chan<- prometheus.Metric) {
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, v, labels...)
	}
	if s.cfg.Consumer != nil {
		c := s.cfg.Consumer()
		gauge(s.inFlight, float64(c.InFlight))
		gauge(s.backlog, float64(c.Backlog))
		gauge(s.paused, float64(c.Paused))
		counter(s.pauses, float64(c.Pauses))
		gauge(s.assigned, float64(c.Assigned))
	}
	if s.cfg.Lag != nil {
		for _, p := range s.cfg.Lag() {
			if s.topics[p.Topic] {
				gauge(s.lag, float64(p.Records), p.Topic, partitionLabel(p.Partition))
			}
		}
	}
	if s.cfg.HashPool != nil {
		h := s.cfg.HashPool()
		gauge(s.hashSlots, float64(h.Slots))
		gauge(s.hashBusy, float64(h.Busy))
		gauge(s.hashQueued, float64(h.Queued))
		counter(s.hashShed, float64(h.Shed))
		ch <- histogram(s.hashWait, h.Wait)
	}
	if s.cfg.Outbox != nil {
		o := s.cfg.Outbox()
		counter(s.outboxPublished, float64(o.Published))
		counter(s.outboxBatches, float64(o.Batches))
		counter(s.outboxFailed, float64(o.Failed))
		counter(s.outboxSessions, float64(o.Sessions))
		gauge(s.outboxShards, float64(o.Shards))
		gauge(s.outboxLastLag, o.LastLag.Seconds())
		ch <- histogram(s.outboxLag, o.Lag)
	}
	if s.cfg.Postgres != nil {
		p := s.cfg.Postgres()
		gauge(s.pgAcquired, float64(p.Acquired))
		gauge(s.pgIdle, float64(p.Idle))
		gauge(s.pgTotal, float64(p.Total))
		gauge(s.pgMax, float64(p.Max))
		counter(s.pgAcquires, float64(p.Acquires))
		counter(s.pgAcquireSeconds, p.AcquireDuration.Seconds())
		counter(s.pgEmpty, float64(p.EmptyAcquires))
		counter(s.pgEmptyWait, p.EmptyAcquireWait.Seconds())
		counter(s.pgCanceled, float64(p.CanceledAcquires))
	}
	if s.cfg.Redis != nil {
		r := s.cfg.Redis()
		counter(s.redisHits, float64(r.Hits))
		counter(s.redisMisses, float64(r.Misses))
		counter(s.redisTimeouts, float64(r.Timeouts))
		counter(s.redisWaits, float64(r.Waits))
		counter(s.redisWaitSeconds, r.WaitDuration.Seconds())
		gauge(s.redisTotal, float64(r.Total))
		gauge(s.redisIdle, float64(r.Idle))
		counter(s.redisStale, float64(r.Stale))
	}
	if s.cfg.Stores != nil {
		for _, st := range s.cfg.Stores() {
			down := 0.0
			if st.Down {
				down = 1
			}
			gauge(s.storeDown, down, st.Name)
			counter(s.storeDowns, float64(st.Downs), st.Name)
		}
	}
}

// histogram exports a histogram of package latency at latencyBuckets.
func histogram(d *prometheus.Desc, s latency.Snapshot) prometheus.Metric {
	buckets := make(map[float64]uint64, len(latencyBuckets))
	for _, b := range latencyBuckets {
		buckets[b.Seconds()] = s.CountUnder(b)
	}
	return prometheus.MustNewConstHistogram(d, s.Count(), s.Sum().Seconds(), buckets)
}
