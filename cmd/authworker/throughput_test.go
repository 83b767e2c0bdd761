package main

import (
	"context"
	"runtime"
	"testing"

	"github.com/authworker/authworker/client"
)

// The cheap operations services call most, over Kafka, with many requests
// in flight: ops/s is what the worker serves (with the broker, PostgreSQL
// and Redis on the same machine). authctl bench measures them with latency
// percentiles; these keep an eye on them in `make bench`.

func BenchmarkIntrospectOverKafka(b *testing.B) {
	w := startWorker(b, "AUTH_WORKERS=64")
	c := w.client(b)
	_, s := newAccount(b, c)
	b.SetParallelism(32)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			res, err := c.Introspect(context.Background(), s.AccessToken, "")
			if err != nil || !res.Active {
				b.Errorf("introspect: %v %v", res, err)
				return
			}
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}

func BenchmarkRefreshOverKafka(b *testing.B) {
	const parallelism = 32
	w := startWorker(b, "AUTH_WORKERS=64")
	c := w.client(b)
	// One session per goroutine, opened before the clock starts.
	sessions := make(chan *client.LoginResult, parallelism*runtime.GOMAXPROCS(0))
	for range cap(sessions) {
		_, s := newAccount(b, c)
		sessions <- s
	}
	b.SetParallelism(parallelism)
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		token := (<-sessions).RefreshToken
		for pb.Next() {
			next, err := c.Refresh(context.Background(), token)
			if err != nil {
				b.Errorf("refresh: %v", err)
				return
			}
			token = next.RefreshToken
		}
	})
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "ops/s")
}
