package main

import (
	"context"
	"net/http"
	"testing"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/testenv"
)

// exposition is one scrape of /metrics, parsed.
type exposition map[string]*dto.MetricFamily

func scrape(t *testing.T, url string) exposition {
	t.Helper()
	res, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET %s = %d", url, res.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("the exposition does not parse: %v", err)
	}
	return fams
}

// series returns the metrics of family name whose labels include pairs.
func (e exposition) series(name string, pairs ...string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range e[name].GetMetric() {
		match := true
		for i := 0; i < len(pairs); i += 2 {
			found := false
			for _, l := range m.GetLabel() {
				found = found || (l.GetName() == pairs[i] && l.GetValue() == pairs[i+1])
			}
			match = match && found
		}
		if match {
			out = append(out, m)
		}
	}
	return out
}

// value is the sum of the counter or gauge series of name with pairs, or
// of their histograms' counts.
func (e exposition) value(name string, pairs ...string) float64 {
	var v float64
	for _, m := range e.series(name, pairs...) {
		switch {
		case m.Counter != nil:
			v += m.GetCounter().GetValue()
		case m.Gauge != nil:
			v += m.GetGauge().GetValue()
		case m.Histogram != nil:
			v += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return v
}

// TestMetricsMoveAfterTraffic scrapes a real worker's /metrics before and
// after a few requests: the request counters and histograms move by what
// was sent, by operation and status, and the store pools, the consumer and
// the outbox relay report.
func TestMetricsMoveAfterTraffic(t *testing.T) {
	w := startWorker(t, "KAFKA_STATISTICS_INTERVAL_MS=100")
	url := "http://" + w.main.http.Addr() + "/metrics"
	before := scrape(t, url)

	c := w.client(t)
	ctx := context.Background()
	email := testenv.Unique("mia") + "@example.com"
	if _, err := c.Register(ctx, email, password); err != nil {
		t.Fatal(err)
	}
	res, err := c.Login(ctx, email, password, client.WithIP("192.0.2.20"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Login(ctx, email, "not the right password at all"); err == nil {
		t.Fatal("a wrong password logged in")
	}
	if _, err := c.Introspect(ctx, res.AccessToken, ""); err != nil {
		t.Fatal(err)
	}
	// A reply reaches its caller as soon as the broker has it; the worker
	// counts it once its producer hears the acknowledgement, which may come
	// a moment later: wait until it has counted the four and holds no
	// record in flight.
	var after exposition
	waitFor(t, "the worker to count every reply", func() bool {
		after = scrape(t, url)
		return after.value("authworker_requests_total")-before.value("authworker_requests_total") >= 4 &&
			after.value("authworker_consumer_in_flight") == 0
	})

	moved := []struct {
		name  string
		pairs []string
		by    float64
	}{
		{"authworker_requests_total", []string{"op", "register", "status", "OK"}, 1},
		{"authworker_requests_total", []string{"op", "login", "status", "OK"}, 1},
		{"authworker_requests_total", []string{"op", "login", "status", "UNAUTHORIZED"}, 1},
		{"authworker_requests_total", []string{"op", "introspect", "status", "OK"}, 1},
		{"authworker_requests_total", nil, 4},
		{"authworker_request_duration_seconds", []string{"op", "register"}, 1},
		{"authworker_request_duration_seconds", []string{"op", "login"}, 2},
		{"authworker_request_duration_seconds", []string{"op", "introspect"}, 1},
		{"authworker_request_age_seconds", nil, 4},
	}
	for _, m := range moved {
		if got := after.value(m.name, m.pairs...) - before.value(m.name, m.pairs...); got != m.by {
			t.Errorf("%s%v moved by %v, want %v", m.name, m.pairs, got, m.by)
		}
	}
	grew := []string{"authworker_postgres_acquires_total", "authworker_postgres_acquire_seconds_total"}
	for _, name := range grew {
		if after.value(name) <= before.value(name) {
			t.Errorf("%s did not grow: %v, then %v", name, before.value(name), after.value(name))
		}
	}
	if redis := func(e exposition) float64 {
		return e.value("authworker_redis_hits_total") + e.value("authworker_redis_misses_total")
	}; redis(after) <= redis(before) {
		t.Errorf("Redis pool hits and misses did not grow: %v, then %v", redis(before), redis(after))
	}
	for _, name := range []string{"authworker_postgres_max_connections", "authworker_redis_connections", "authworker_consumer_assigned_partitions", "go_goroutines", "process_resident_memory_bytes"} {
		if after.value(name) <= 0 {
			t.Errorf("%s = %v, want more than 0", name, after.value(name))
		}
	}

	// The relay publishes the registration's event, and librdkafka's next
	// statistics report gives the lag of the partitions the requests went
	// to (a partition without a stored or committed offset has none yet):
	// wait for both, as for any asynchronous outcome.
	var last exposition
	waitFor(t, "the outbox event and the lag of the partitions", func() bool {
		last = scrape(t, url)
		ours := last.series("authworker_consumer_lag_records", "topic", w.cfg.Topics.Request)
		return last.value("authworker_outbox_published_total") > before.value("authworker_outbox_published_total") &&
			len(ours) > 0 && len(ours) == len(last.series("authworker_consumer_lag_records")) &&
			last.value("authworker_consumer_lag_records") == 0
	})
	if n := len(last.series("authworker_outbox_lag_seconds")); n != 1 {
		t.Errorf("%d outbox lag histograms, want 1", n)
	}
}
