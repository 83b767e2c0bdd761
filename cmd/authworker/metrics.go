package main

import (
	"time"

	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/health"
	"github.com/authworker/authworker/metrics"
)

// newMetrics builds the metrics over the parts Open has made or will have
// made by Run: each source is read only when /metrics is scraped, which
// the HTTP server answers from Run on.
func (m *Main) newMetrics() (*metrics.Metrics, error) {
	return metrics.New(metrics.Config{
		Consumer: func() metrics.ConsumerStats {
			if m.pool == nil {
				return metrics.ConsumerStats{}
			}
			s := m.pool.Stats()
			return metrics.ConsumerStats{InFlight: s.InFlight, Backlog: s.Backlog, Paused: s.Paused, Pauses: s.Pauses, Assigned: s.Assigned}
		},
		Lag: func() []metrics.PartitionLag {
			if m.lag == nil {
				return nil
			}
			parts := m.lag.Partitions()
			out := make([]metrics.PartitionLag, len(parts))
			for i, p := range parts {
				out[i] = metrics.PartitionLag{Topic: p.Topic, Partition: p.Partition, Records: p.Records}
			}
			return out
		},
		HashPool: func() metrics.HashPoolStats {
			if m.hashes == nil {
				return metrics.HashPoolStats{}
			}
			s := m.hashes.Stats()
			return metrics.HashPoolStats{
				Slots: s.Slots, Busy: s.Busy, Queued: s.Queued,
				Shed: s.Shed.TooLate + s.Shed.QueueFull + s.Shed.Overloaded + s.Shed.WaitExpired,
				Wait: s.Wait,
			}
		},
		RequestTopics: m.cfg.Topics.RequestTopics(),
		Outbox: func() metrics.OutboxStats {
			s := m.relay.Stats()
			return metrics.OutboxStats{
				Published: s.Published, Batches: s.Batches, Failed: s.Failed, Sessions: s.Sessions,
				Shards: s.Shards, LastLag: s.LastLag, Lag: s.Lag,
			}
		},
		Postgres: func() metrics.PostgresStats {
			s := m.db.PoolStat()
			return metrics.PostgresStats{
				Acquired: s.AcquiredConns(), Idle: s.IdleConns(), Total: s.TotalConns(), Max: s.MaxConns(),
				Acquires: s.AcquireCount(), EmptyAcquires: s.EmptyAcquireCount(), CanceledAcquires: s.CanceledAcquireCount(),
				AcquireDuration: s.AcquireDuration(), EmptyAcquireWait: s.EmptyAcquireWaitTime(),
			}
		},
		Stores: func() []metrics.StoreStats {
			var out []metrics.StoreStats
			for _, h := range []*health.Store{m.pgHealth, m.redisHealth} {
				if h != nil {
					out = append(out, metrics.StoreStats{Name: h.Name(), Down: h.Down(), Downs: h.Downs()})
				}
			}
			return out
		},
		Redis: func() metrics.RedisStats {
			s := m.redis.PoolStats()
			return metrics.RedisStats{
				Hits: uint64(s.Hits), Misses: uint64(s.Misses), Timeouts: uint64(s.Timeouts), Waits: uint64(s.WaitCount),
				WaitDuration: time.Duration(s.WaitDurationNs), Total: s.TotalConns, Idle: s.IdleConns, Stale: uint64(s.StaleConns),
			}
		},
	})
}

// requestObserver tells the metrics how requests ended.
type requestObserver struct{ metrics *metrics.Requests }

var _ consumers.Observer = requestObserver{}

// Replied implements consumers.Observer.
func (o requestObserver) Replied(r consumers.Replied) {
	o.metrics.Replied(r.Op, r.Status, r.Handling, r.Age, r.HasAge)
}

// DeadLettered implements consumers.Observer.
func (o requestObserver) DeadLettered(reason string) { o.metrics.DeadLettered(reason) }
