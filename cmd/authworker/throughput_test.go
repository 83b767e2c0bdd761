package main

import (
	"context"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/passwords"
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

// BenchmarkEventLag measures how long a domain event takes from its
// transaction to the broker's acknowledgement (the outbox relay's lag
// histogram), with refreshes as the state changes: at a moderate, paced
// rate (Load=moderate, 200 refreshes/s) and flat out (Load=max). It reports
// the lag's p50 and p99 and the events published per second.
func BenchmarkEventLag(b *testing.B) {
	for _, tt := range []struct {
		name     string
		parallel int
		interval time.Duration // between refreshes of one goroutine; 0 for none
	}{
		{"Load=moderate", 4, 20 * time.Millisecond},
		{"Load=max", 32, 0},
	} {
		b.Run(tt.name, func(b *testing.B) {
			w := startWorker(b, "AUTH_WORKERS=64")
			c := w.client(b)
			tokens := make([]string, tt.parallel)
			for i := range tokens {
				_, s := newAccount(b, c)
				tokens[i] = s.RefreshToken
			}
			waitFor(b, "the setup's events", func() bool { return w.main.relay.Stats().Published >= uint64(2*tt.parallel) })
			before := w.main.relay.Stats()
			var next atomic.Int64
			var wg sync.WaitGroup
			b.ResetTimer()
			for i := range tokens {
				wg.Go(func() {
					token := tokens[i]
					for next.Add(1) <= int64(b.N) {
						start := time.Now()
						res, err := c.Refresh(context.Background(), token)
						if err != nil {
							b.Errorf("refresh: %v", err)
							return
						}
						token = res.RefreshToken
						time.Sleep(tt.interval - time.Since(start))
					}
				})
			}
			wg.Wait()
			waitFor(b, "every event", func() bool { return w.main.relay.Stats().Published >= before.Published+uint64(b.N) })
			b.StopTimer()
			after := w.main.relay.Stats()
			lag := after.Lag.Sub(before.Lag)
			b.ReportMetric(float64(lag.Quantile(0.5).Microseconds())/1000, "lag-p50-ms")
			b.ReportMetric(float64(lag.Quantile(0.99).Microseconds())/1000, "lag-p99-ms")
			b.ReportMetric(float64(after.Published-before.Published)/b.Elapsed().Seconds(), "events/s")
		})
	}
}

// BenchmarkLoginThroughput measures logins served per second with 16 in
// flight over distinct accounts (the closed loop of the issue's
// measurement), against the raw argon2id rate of this machine at the
// worker's parameters, measured in the same run on every CPU: login/raw is
// the share of the hashing capacity that reaches callers as logins.
func BenchmarkLoginThroughput(b *testing.B) {
	const inFlight = 16
	w := startWorker(b, "AUTH_WORKERS=32")
	defer cpuHeadroom(os.Getenv)() // as main does, once the configuration is loaded
	c := w.client(b)
	emails := make(chan string, inFlight)
	for range inFlight {
		email, _ := newAccount(b, c)
		emails <- email
	}
	// The raw rate drifts with the machine (its other tenants, its clock):
	// measured before and after the logins, and averaged.
	rawBefore := rawHashRate(b, w.cfg.Hasher, 2*time.Second)
	var next atomic.Int64
	// How busy the hash slots are while logins run, sampled.
	var busy, samples atomic.Int64
	sampling := make(chan struct{})
	go func() {
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-sampling:
				return
			case <-t.C:
				st := w.main.hashes.Stats()
				busy.Add(int64(st.Busy))
				samples.Add(int64(st.Slots))
			}
		}
	}()
	b.ResetTimer()
	var wg sync.WaitGroup
	for range inFlight {
		email := <-emails
		wg.Go(func() {
			for next.Add(1) <= int64(b.N) {
				if _, err := c.Login(context.Background(), email, password); err != nil {
					b.Errorf("login: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()
	b.StopTimer()
	close(sampling)
	b.ReportMetric(float64(busy.Load())/float64(max(samples.Load(), 1)), "slots-busy")
	logins := float64(b.N) / b.Elapsed().Seconds()
	b.ReportMetric(logins, "logins/s")
	raw := (rawBefore + rawHashRate(b, w.cfg.Hasher, 2*time.Second)) / 2
	b.ReportMetric(raw, "raw-hashes/s")
	b.ReportMetric(logins/raw, "login/raw")
}

// rawHashRate is how many hashes per second the worker's hasher computes
// on every CPU (a goroutine each), nothing else running.
func rawHashRate(tb testing.TB, cfg passwords.HasherConfig, d time.Duration) float64 {
	tb.Helper()
	h, err := passwords.NewHasher(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	var n atomic.Int64
	stop := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for time.Now().Before(stop) {
				if _, err := h.Hash(password); err != nil {
					tb.Error(err)
					return
				}
				n.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(n.Load()) / time.Since(start).Seconds()
}
