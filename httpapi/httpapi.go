// Package httpapi is the worker's small HTTP face: liveness, readiness,
// metrics (served by a handler it is given), the JWKS that lets any
// service verify access tokens offline, and the discovery documents that
// lead a verifier from the issuer to the JWKS.
// Requests for authentication itself never come over HTTP; they come over
// Kafka.
//
// The JWKS and the discovery documents are served from memory, never from
// a store, so they answer while PostgreSQL is down. Each is sent with a
// strong ETag, a hash of its exact bytes computed once per change, and
// answered 304 Not Modified when a request's If-None-Match matches it.
package httpapi

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
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
	// Issuer is the issuer identifier: the iss of access tokens, and the
	// issuer of the discovery documents, served where OpenID Connect
	// Discovery and RFC 8414 place them for it. An https URL (http only on
	// a loopback host) without query or fragment.
	Issuer string
	// JWKSURI is the jwks_uri of the discovery documents: where verifiers
	// fetch the key set. Default Issuer + "/.well-known/jwks.json". An https
	// URL (http only on a loopback host). When it is on the issuer's
	// origin, the JWKS is served at its path too, besides
	// /.well-known/jwks.json.
	JWKSURI string
	// JWKS returns the current key set as JSON. It is called on every
	// request, so it must be cheap, and it must return the same slice for
	// as long as the set is unchanged and a new one when it changes, never
	// modifying a slice it returned: the handler hashes a slice it has not
	// seen, once, and serves the ETag it computed for as long as JWKS
	// returns that slice. tokens.Issuer.JWKS is such a source.
	JWKS func() []byte
	// Checks are the dependencies /readyz reports on.
	Checks []Check
	// CheckTimeout bounds each readiness check. Default 2 seconds.
	CheckTimeout time.Duration
	// JWKSMaxAge is how long clients and caches may keep the JWKS, and the
	// discovery documents, before asking again (Cache-Control max-age, in
	// whole seconds). Keys are published before they sign; a cache may hide
	// a new key for this long, so it must stay below the time a key is
	// published before it signs. Default DefaultJWKSMaxAge.
	JWKSMaxAge time.Duration
	// Metrics, when set, is served at GET MetricsPath: the worker's
	// Prometheus metrics. httpapi knows nothing of their format.
	Metrics http.Handler
	Logger  *slog.Logger
}

// Defaults of Config.
const (
	DefaultAddr       = ":8080"
	DefaultJWKSMaxAge = 5 * time.Minute
)

// MetricsPath is where Config.Metrics is served.
const MetricsPath = "/metrics"

// Paths of the documents that do not depend on the issuer.
const (
	JWKSPath = "/.well-known/jwks.json"
	// OIDCDiscoverySuffix is appended to the issuer (OpenID Connect
	// Discovery 1.0 §4); OAuthMetadataPrefix is inserted between the
	// issuer's host and its path (RFC 8414 §3.1).
	OIDCDiscoverySuffix = "/.well-known/openid-configuration"
	OAuthMetadataPrefix = "/.well-known/oauth-authorization-server"
)

// DefaultJWKSURI is Config.JWKSURI's default for issuer.
func DefaultJWKSURI(issuer string) string {
	return strings.TrimSuffix(issuer, "/") + JWKSPath
}

func (c *Config) setDefaults() {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	if c.JWKSURI == "" && c.Issuer != "" {
		c.JWKSURI = DefaultJWKSURI(c.Issuer)
	}
	if c.CheckTimeout == 0 {
		c.CheckTimeout = 2 * time.Second
	}
	if c.JWKSMaxAge == 0 {
		c.JWKSMaxAge = DefaultJWKSMaxAge
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work, after defaults.
func (c Config) Validate() error {
	c.setDefaults()
	if c.JWKS == nil {
		return errors.New("httpapi: a JWKS source is required")
	}
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		return fmt.Errorf("httpapi: listen address %q: %w", c.Addr, err)
	}
	if err := ValidateIssuer(c.Issuer); err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	if err := ValidateJWKSURI(c.JWKSURI); err != nil {
		return fmt.Errorf("httpapi: %w", err)
	}
	if c.JWKSMaxAge < time.Second {
		return fmt.Errorf("httpapi: JWKS max-age %v is under a second: caches count it in whole seconds", c.JWKSMaxAge)
	}
	_, err := c.routes()
	return err
}

// ValidateIssuer reports why issuer cannot identify an issuer whose
// metadata verifiers discover: it must be an https URL, or http on a
// loopback host (for development), with no query or fragment (RFC 8414
// §2, OpenID Connect Discovery §3). Verifiers fetch the key set from where
// its metadata says, so metadata fetched in the clear could send them to an
// attacker's keys.
func ValidateIssuer(issuer string) error {
	u, err := publishedURL(issuer)
	if err == nil && (u.RawQuery != "" || u.ForceQuery) {
		err = errors.New("has a query")
	}
	if err != nil {
		return fmt.Errorf("issuer %q: %w", issuer, err)
	}
	return nil
}

// ValidateJWKSURI reports why uri cannot be the jwks_uri: it must be an
// https URL, or http on a loopback host, with no fragment. Keys fetched in
// the clear could be an attacker's.
func ValidateJWKSURI(uri string) error {
	if _, err := publishedURL(uri); err != nil {
		return fmt.Errorf("jwks_uri %q: %w", uri, err)
	}
	return nil
}

// publishedURL parses a URL that verifiers are told to fetch.
func publishedURL(s string) (*url.URL, error) {
	u, err := url.Parse(s)
	switch {
	case err != nil || s == "":
		return nil, errors.New("is not a URL")
	case !u.IsAbs() || u.Host == "" || u.Opaque != "":
		return nil, errors.New("is not an absolute URL with a host")
	case u.User != nil:
		return nil, errors.New("holds credentials")
	case u.Fragment != "" || strings.Contains(s, "#"):
		return nil, errors.New("has a fragment")
	case u.Scheme == "https":
		return u, nil
	case u.Scheme == "http" && isLoopback(u.Hostname()):
		return u, nil
	case u.Scheme == "http":
		return nil, errors.New("is http on a host that is not loopback: use https")
	}
	return nil, fmt.Errorf("has scheme %q, want https", u.Scheme)
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Server serves the HTTP endpoints.
type Server struct {
	srv *http.Server
	ln  net.Listener
}

// NewHandler returns the endpoints as an http.Handler, or the first setting
// that cannot work.
func NewHandler(cfg Config) (http.Handler, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	docs, err := cfg.routes()
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", cfg.readyz)
	if cfg.Metrics != nil {
		mux.Handle("GET "+MetricsPath, cfg.Metrics)
	}
	return &handler{
		docs:         docs,
		cacheControl: []string{"public, max-age=" + strconv.FormatInt(int64(cfg.JWKSMaxAge/time.Second), 10)},
		next:         mux,
	}, nil
}

// Media types of the documents. RFC 7517 §8.5 registers
// application/jwk-set+json for a JWK Set; Spring Security and jose ask for
// it beside application/json, and neither they nor go-oidc look at the
// type of the answer. Discovery documents are application/json (OpenID
// Connect Discovery §4.2, RFC 8414 §3.2).
var (
	jwkSetType = []string{"application/jwk-set+json"}
	jsonType   = []string{"application/json"}
	anyOrigin  = []string{"*"}
	getOrHead  = []string{"GET, HEAD"}
)

// routes maps each path a document is served at to the document: the JWKS
// at JWKSPath and, when the jwks_uri is on the issuer's origin, at its
// path; the OpenID Connect and RFC 8414 metadata at the issuer's locations.
func (c Config) routes() (map[string]route, error) {
	issuer, err := url.Parse(c.Issuer)
	if err != nil {
		return nil, fmt.Errorf("httpapi: issuer %q: %w", c.Issuer, err)
	}
	jwksURI, err := url.Parse(c.JWKSURI)
	if err != nil {
		return nil, fmt.Errorf("httpapi: jwks_uri %q: %w", c.JWKSURI, err)
	}
	jwks := &jwksDocuments{source: c.JWKS}
	metadata := &metadataDocuments{issuer: c.Issuer, jwksURI: c.JWKSURI, jwks: jwks}

	path := strings.TrimSuffix(issuer.Path, "/")
	docs := map[string]route{
		JWKSPath:                   {jwkSetType, jwks.current},
		path + OIDCDiscoverySuffix: {jsonType, metadata.current},
		OAuthMetadataPrefix + path: {jsonType, metadata.current},
	}
	if jwksURI.Scheme == issuer.Scheme && strings.EqualFold(jwksURI.Host, issuer.Host) && jwksURI.Path != JWKSPath {
		if _, taken := docs[jwksURI.Path]; taken || !strings.HasPrefix(jwksURI.Path, "/") || jwksURI.Path == "/" ||
			jwksURI.Path == "/healthz" || jwksURI.Path == "/readyz" || jwksURI.Path == MetricsPath {
			return nil, fmt.Errorf("httpapi: jwks_uri %q: its path is not free for the JWKS on the issuer's host", c.JWKSURI)
		}
		docs[jwksURI.Path] = route{jwkSetType, jwks.current}
	}
	return docs, nil
}

// route is a document and its media type.
type route struct {
	contentType []string
	current     func() *document
}

// document is one representation served from memory, with the header
// values computed from its bytes once, so that serving it computes nothing
// and allocates nothing.
type document struct {
	body   []byte
	tag    string   // the strong entity tag, quotes included
	etag   []string // {tag}, the ETag field value
	length []string // the Content-Length field value
}

func newDocument(body []byte) *document {
	sum := sha256.Sum256(body)
	tag := `"` + base64.RawURLEncoding.EncodeToString(sum[:]) + `"`
	return &document{body: body, tag: tag, etag: []string{tag}, length: []string{strconv.Itoa(len(body))}}
}

// jwksDocuments turns the key sets of a JWKS source into documents,
// hashing each set once: the last document is kept while the source
// returns the slice it was made of.
type jwksDocuments struct {
	source func() []byte
	last   atomic.Pointer[document]
}

func (j *jwksDocuments) current() *document {
	body := j.source()
	if d := j.last.Load(); d != nil && sameSlice(d.body, body) {
		return d
	}
	// A new set: two requests may both get here and both store one;
	// their documents are the same.
	d := newDocument(body)
	j.last.Store(d)
	return d
}

// metadataDocuments builds the discovery metadata (OpenID Connect
// Discovery and RFC 8414 serve the same one) from the key set, once per
// set, since it names the algorithms of the published keys.
type metadataDocuments struct {
	issuer, jwksURI string
	jwks            *jwksDocuments
	last            atomic.Pointer[metadataDocument]
}

// metadataDocument is the metadata made from one JWKS document.
type metadataDocument struct {
	keys, doc *document
}

func (m *metadataDocuments) current() *document {
	keys := m.jwks.current()
	if d := m.last.Load(); d != nil && d.keys == keys {
		return d.doc
	}
	d := &metadataDocument{keys: keys, doc: newDocument(m.encode(keys.body))}
	m.last.Store(d)
	return d.doc
}

// encode returns the metadata for a key set. Only what is true of this
// worker: it has neither an authorization nor a token endpoint over HTTP,
// so the other members OpenID Connect Discovery requires would be false.
// It issues no ID tokens either: id_token_signing_alg_values_supported
// names the algorithms of its access tokens, every one a published key
// may have signed, for verifiers that take the algorithms they accept from
// it (go-oidc) and would otherwise accept RS256 alone.
func (m *metadataDocuments) encode(jwks []byte) []byte {
	var set struct {
		Keys []struct {
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	algs := []string{}
	if json.Unmarshal(jwks, &set) == nil {
		for _, k := range set.Keys {
			if k.Alg != "" {
				algs = append(algs, k.Alg)
			}
		}
		slices.Sort(algs)
		algs = slices.Compact(algs)
	}
	var body bytes.Buffer
	enc := json.NewEncoder(&body)
	enc.SetEscapeHTML(false)
	// A struct of strings always encodes.
	_ = enc.Encode(struct {
		Issuer     string   `json:"issuer"`
		JWKSURI    string   `json:"jwks_uri"`
		Algorithms []string `json:"id_token_signing_alg_values_supported"`
	}{m.issuer, m.jwksURI, algs})
	return body.Bytes()
}

// sameSlice reports whether a and b are the same bytes in memory. The last
// document holds its slice, so its array cannot be freed and reused for
// another set while it is compared.
func sameSlice(a, b []byte) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// handler serves the documents from memory and hands every other path to
// next.
type handler struct {
	docs         map[string]route
	cacheControl []string
	next         http.Handler
}

// ServeHTTP answers GET and HEAD of a document: 304 Not Modified when
// If-None-Match matches its ETag, else 200 with the document (HEAD: its
// headers only). Header values are assigned, not built: they are shared,
// read-only slices.
func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rt, ok := h.docs[r.URL.Path]
	if !ok {
		h.next.ServeHTTP(w, r)
		return
	}
	header := w.Header()
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		header["Allow"] = getOrHead
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	d := rt.current()
	// A 304 carries what a 200 would of Cache-Control and ETag (RFC 9110
	// §15.4.5), so that caches refresh both.
	header["Cache-Control"] = h.cacheControl
	header["Etag"] = d.etag
	header["Access-Control-Allow-Origin"] = anyOrigin
	if noneMatch(r.Header["If-None-Match"], d.tag) {
		w.WriteHeader(http.StatusNotModified)
		return
	}
	header["Content-Type"] = rt.contentType
	header["Content-Length"] = d.length
	w.WriteHeader(http.StatusOK)
	if r.Method == http.MethodGet {
		w.Write(d.body)
	}
}

// noneMatch reports whether the If-None-Match field lines match tag, a
// strong entity tag: "*" (the document exists), or a list holding an entity
// tag whose opaque tag is tag's, weak (W/) or not: If-None-Match uses the
// weak comparison (RFC 9110 §13.1.2). Parsing stops at the first malformed
// member of a line; what came before it still counts.
func noneMatch(lines []string, tag string) bool {
	for _, v := range lines {
		if v = skip(v, " \t"); v != "" && v[0] == '*' && skip(v[1:], " \t") == "" {
			return true
		}
		for {
			v = skip(v, " \t,")
			v = strings.TrimPrefix(v, "W/")
			if v == "" || v[0] != '"' {
				break
			}
			end := strings.IndexByte(v[1:], '"')
			if end < 0 {
				break
			}
			if v[:end+2] == tag {
				return true
			}
			v = v[end+2:]
		}
	}
	return false
}

// skip returns s without the leading bytes that are in set, a few ASCII
// bytes. (strings.TrimLeft with a cutset builds a table on each call.)
func skip(s, set string) string {
	for s != "" && strings.IndexByte(set, s[0]) >= 0 {
		s = s[1:]
	}
	return s
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
	h, err := NewHandler(cfg)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return nil, fmt.Errorf("httpapi: listen on %s: %w", cfg.Addr, err)
	}
	return &Server{
		ln: ln,
		srv: &http.Server{
			Handler:           h,
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
