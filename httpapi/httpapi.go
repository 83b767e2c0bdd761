// Package httpapi is the worker's small HTTP face: liveness, readiness, and
// the JWKS that lets any service verify access tokens offline. Requests for
// authentication itself never come over HTTP; they come over Kafka.
package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"
)

// Check reports whether one dependency is usable.
type Check struct {
	Name  string                          // "postgres", "redis", "kafka"
	Check func(ctx context.Context) error // nil when ready
}

// Config configures the HTTP server.
type Config struct {
	Addr string // default ":8080"
	// JWKS returns the current key set as JSON.
	JWKS func() []byte
	// Checks are the dependencies /readyz reports on.
	Checks []Check
	// CheckTimeout bounds each readiness check. Default 2 seconds.
	CheckTimeout time.Duration
	// JWKSMaxAge is how long clients may cache the JWKS. Keys are
	// published before they sign, so caching never hides a key in use for
	// longer than the pre-publication period. Default 5 minutes.
	JWKSMaxAge time.Duration
	Logger     *slog.Logger
}

// DefaultAddr is Config.Addr's default.
const DefaultAddr = ":8080"

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 2 * time.Second
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = 5 * time.Minute
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.JWKS == nil {
		return errors.New("httpapi: a JWKS source is required")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("httpapi: listen address %q: %w", c.Addr, err)
	}
	return nil
}

// Server serves the HTTP endpoints.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// NewHandler returns the endpoints as an http.Handler.
func NewHandler(cfg Config) http.Handler {
	cfg.setDefaults()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", cfg.readyz)
	mux.HandleFunc("GET /.well-known/jwks.json", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Cache-Control", fmt.Sprintf("public, max-age=%d", int(cfg.JWKSMaxAge.Seconds())))
		w.Write(cfg.JWKS())
	})
	return mux
}

// readyz runs every check at once and answers 200 when all pass, 503 naming
// the failing ones otherwise. Causes are logged, not served.
func (c Config) readyz(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), c.CheckTimeout)
	defer cancel()
	results := make(map[string]string, len(c.Checks))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, ch := range c.Checks {
		wg.Go(func() {
			status := "ok"
			if err := ch.Check(ctx); err != nil {
				status = "unavailable"
				c.Logger.Warn("not ready", "dependency", ch.Name, "err", err)
			}
			mu.Lock()
			results[ch.Name] = status
			mu.Unlock()
		})
	}
	wg.Wait()
	code, status := http.StatusOK, "ok"
	for _, s := range results {
		if s != "ok" {
			code, status = http.StatusServiceUnavailable, "unavailable"
		}
	}
	writeJSON(w, code, map[string]any{"status": status, "checks": results})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

// Listen binds the address, so that a port conflict fails start-up and a
// test can learn the port before serving.
func Listen(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: listen on %s: %w", cfg.Addr, err)
	}
	return &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           NewHandler(cfg),
			ReadHeaderTimeout: 5 * time.Second,
			ReadTimeout:       10 * time.Second,
			WriteTimeout:      10 * time.Second,
			IdleTimeout:       60 * time.Second,
			MaxHeaderBytes:    16 << 10,
			ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelWarn),
		},
	}, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Run serves until ctx ends, then shuts down gracefully.
func (s *Server) Run(ctx context.Context) error {
	served := make(chan error, 1)
	go func() { served <- s.srv.Serve(s.ln) }()
	select {
	case err := <-served:
		return fmt.Errorf("httpapi: %w", err)
	case <-ctx.Done():
	}
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := s.srv.Shutdown(shutdownCtx); err != nil {
		return fmt.Errorf("httpapi: shutdown: %w", err)
	}
	return nil
}
