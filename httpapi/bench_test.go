package httpapi_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/authworker/authworker/httpapi"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/latency"
	"github.com/authworker/authworker/tokens"
)

// benchIssuer is a real issuer with an Ed25519 key, the default: its JWKS
// is the one a worker serves.
func benchIssuer(b *testing.B) *tokens.Issuer {
	b.Helper()
	i, err := tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), tokens.Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, KeyEncryptionKey: kek,
	})
	if err != nil {
		b.Fatal(err)
	}
	return i
}

// report adds requests/s and latency quantiles to b's results.
func report(b *testing.B, h *latency.Histogram) {
	s := h.Snapshot()
	µs := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "req/s")
	b.ReportMetric(µs(s.Quantile(0.5)), "p50-µs")
	b.ReportMetric(µs(s.Quantile(0.99)), "p99-µs")
}

// BenchmarkJWKS measures the JWKS endpoint under concurrent load: through
// the handler alone (what serving costs the worker), and over loopback
// TCP with many keep-alive clients (what a verifier sees; the clients
// share the machine's cores with the server). Status=304 revalidates with
// the ETag, as a verifier's HTTP cache would.
func BenchmarkJWKS(b *testing.B) {
	issuer := benchIssuer(b)
	cfg := httpapi.Config{Issuer: "https://auth.example.com", JWKS: issuer.JWKS}
	h := newHandler(b, cfg)
	etag := do(h, http.MethodGet, "/.well-known/jwks.json").Header().Get("ETag")
	for _, status := range []int{http.StatusOK, http.StatusNotModified} {
		b.Run("Handler/Status="+http.StatusText(status), func(b *testing.B) {
			var hist latency.Histogram
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				req := httptest.NewRequest(http.MethodGet, "/.well-known/jwks.json", nil)
				if status == http.StatusNotModified {
					req.Header.Set("If-None-Match", etag)
				}
				w := &discardWriter{header: http.Header{}}
				for pb.Next() {
					start := time.Now()
					h.ServeHTTP(w, req)
					hist.Record(time.Since(start))
					if w.code != status {
						b.Errorf("status %d, want %d", w.code, status)
						return
					}
				}
			})
			report(b, &hist)
		})
	}

	cfg.Addr = "127.0.0.1:0"
	srv, err := httpapi.Listen(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	served := make(chan error, 1)
	go func() { served <- srv.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-served; err != nil {
			b.Error(err)
		}
	}()
	url := "http://" + srv.Addr() + "/.well-known/jwks.json"
	for _, tt := range []struct {
		name   string
		conns  int
		status int
	}{
		{"Conns=16/Status=OK", 16, http.StatusOK},
		{"Conns=128/Status=OK", 128, http.StatusOK},
		{"Conns=128/Status=Not_Modified", 128, http.StatusNotModified},
	} {
		// Go's HTTP client, as a Go verifier fetches keys: it costs the
		// machine more than the server does (three goroutines a request).
		b.Run("Loopback/Client=net-http/"+tt.name, func(b *testing.B) {
			client := &http.Client{Transport: &http.Transport{
				MaxIdleConns: tt.conns, MaxIdleConnsPerHost: tt.conns, MaxConnsPerHost: tt.conns,
				DisableCompression: true,
			}}
			defer client.CloseIdleConnections()
			var hist latency.Histogram
			b.SetParallelism(max(1, tt.conns/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					req, err := http.NewRequest(http.MethodGet, url, nil)
					if err != nil {
						b.Error(err)
						return
					}
					if tt.status == http.StatusNotModified {
						req.Header.Set("If-None-Match", etag)
					}
					start := time.Now()
					res, err := client.Do(req)
					if err != nil {
						b.Error(err)
						return
					}
					_, err = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					hist.Record(time.Since(start))
					if err != nil || res.StatusCode != tt.status {
						b.Errorf("status %d (%v), want %d", res.StatusCode, err, tt.status)
						return
					}
				}
			})
			report(b, &hist)
		})
		// A keep-alive client that writes the request and reads the
		// response on one goroutine: light enough that the server, not
		// the load, is what runs out of CPU.
		b.Run("Loopback/Client=raw/"+tt.name, func(b *testing.B) {
			request := "GET /.well-known/jwks.json HTTP/1.1\r\nHost: auth.example.com\r\n"
			if tt.status == http.StatusNotModified {
				request += "If-None-Match: " + etag + "\r\n"
			}
			request += "\r\n"
			var hist latency.Histogram
			b.SetParallelism(max(1, tt.conns/runtime.GOMAXPROCS(0)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				conn, err := net.Dial("tcp", srv.Addr())
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				r := bufio.NewReader(conn)
				for pb.Next() {
					start := time.Now()
					if _, err := io.WriteString(conn, request); err != nil {
						b.Error(err)
						return
					}
					status, err := readResponse(r)
					hist.Record(time.Since(start))
					if err != nil || status != tt.status {
						b.Errorf("status %d (%v), want %d", status, err, tt.status)
						return
					}
				}
			})
			report(b, &hist)
		})
	}
}

// readResponse reads one HTTP/1.1 response from r, discarding its body,
// and returns its status code.
func readResponse(r *bufio.Reader) (int, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		return 0, err
	}
	if len(line) < 12 {
		return 0, fmt.Errorf("status line %q", line)
	}
	status, err := strconv.Atoi(string(line[9:12]))
	if err != nil {
		return 0, err
	}
	length := 0
	for {
		line, err := r.ReadSlice('\n')
		if err != nil {
			return 0, err
		}
		if len(line) <= 2 { // the empty line that ends the header
			break
		}
		if v, ok := bytes.CutPrefix(line, []byte("Content-Length: ")); ok {
			if length, err = strconv.Atoi(string(bytes.TrimSpace(v))); err != nil {
				return 0, err
			}
		}
	}
	_, err = r.Discard(length)
	return status, err
}
