package tokens

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
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

// Defaults of RemoteOptions.
const (
	// DefaultMinRefresh and DefaultMaxRefresh bound the refresh interval
	// that the JWKS response asks for with Cache-Control max-age or
	// Expires. The floor keeps a max-age of 0 from becoming a busy loop;
	// the ceiling keeps a max-age of a year from hiding a retired key.
	DefaultMinRefresh = time.Minute
	DefaultMaxRefresh = time.Hour

	// DefaultRefresh is the interval when the response says nothing about
	// its freshness: the worker's own default max-age.
	DefaultRefresh = 5 * time.Minute

	// DefaultRefreshUnknownKidInterval is how often at most a token with an
	// unknown kid makes the set fetch the JWKS again. Planned rotations
	// publish a key an hour before it signs, so only an emergency rotation
	// shows a verifier a kid it does not know yet; the interval bounds
	// both how long such a verifier may still refuse the new key's tokens
	// and how often forged kids can make it call the endpoint.
	DefaultRefreshUnknownKidInterval = 30 * time.Second

	// DefaultFetchTimeout bounds one fetch: connecting, the answer and its
	// body. A Verify that waits for a fetch waits at most this long.
	DefaultFetchTimeout = 10 * time.Second

	// DefaultMaxJWKSSize caps the JWKS body, after any decompression. Ours
	// is about 150 bytes a key.
	DefaultMaxJWKSSize = 1 << 20
)

// minUnknownKidInterval is the shortest RefreshUnknownKidInterval: any
// shorter and forged kids could drive the endpoint.
const minUnknownKidInterval = time.Second

// RemoteOptions configure a RemoteKeySet. The zero value is the defaults.
type RemoteOptions struct {
	// Client sends the requests; by default, one with the timeouts of
	// DefaultClient's transport and a response header timeout. Pass one to
	// set TLS roots or a proxy. Its redirects are held to the same rule
	// as the URL: https, or http only to loopback or with AllowHTTP.
	Client *http.Client
	// Timeout bounds each fetch; default DefaultFetchTimeout.
	Timeout time.Duration
	// MinRefresh and MaxRefresh bound the interval the response's
	// Cache-Control max-age (or Expires) asks for; defaults
	// DefaultMinRefresh and DefaultMaxRefresh.
	MinRefresh, MaxRefresh time.Duration
	// RefreshUnknownKidInterval is how often at most an unknown kid makes
	// the set fetch the JWKS; default DefaultRefreshUnknownKidInterval,
	// at least a second.
	RefreshUnknownKidInterval time.Duration
	// MaxResponseSize caps the JWKS body in bytes; default
	// DefaultMaxJWKSSize.
	MaxResponseSize int64
	// AllowHTTP allows a plain http URL to a host other than loopback.
	// Anyone on the path could then replace the keys: keep it for tests
	// and sidecars.
	AllowHTTP bool
	// Logger receives failed refreshes (warning), key changes and
	// recoveries (info); default slog.Default().
	Logger *slog.Logger

	// Now and After are the clock; tests pass a fake one. Defaults
	// time.Now and time.After.
	Now   func() time.Time
	After func(time.Duration) <-chan time.Time
}

func (o *RemoteOptions) setDefaults() {
	if o.Timeout == 0 {
		o.Timeout = DefaultFetchTimeout
	}
	if o.MinRefresh == 0 {
		o.MinRefresh = DefaultMinRefresh
	}
	if o.MaxRefresh == 0 {
		o.MaxRefresh = max(DefaultMaxRefresh, o.MinRefresh)
	}
	if o.RefreshUnknownKidInterval == 0 {
		o.RefreshUnknownKidInterval = DefaultRefreshUnknownKidInterval
	}
	if o.MaxResponseSize == 0 {
		o.MaxResponseSize = DefaultMaxJWKSSize
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.After == nil {
		o.After = time.After
	}
}

// Validate reports the first option that cannot work; a zero option
// stands for its default.
func (o RemoteOptions) Validate() error {
	o.setDefaults()
	switch {
	case o.Timeout <= 0:
		return errors.New("remote key set: the fetch timeout must be positive")
	case o.MinRefresh <= 0 || o.MaxRefresh < o.MinRefresh:
		return fmt.Errorf("remote key set: refresh bounds [%v, %v] are not an interval", o.MinRefresh, o.MaxRefresh)
	case o.RefreshUnknownKidInterval < minUnknownKidInterval:
		return fmt.Errorf("remote key set: the unknown-kid refresh interval %v is under %v", o.RefreshUnknownKidInterval, minUnknownKidInterval)
	case o.MaxResponseSize <= 0:
		return errors.New("remote key set: the response size cap must be positive")
	}
	return nil
}

// RemoteKeySet is the key set published at a JWKS URL, kept up to date as
// the issuer rotates its keys. It fetches the set when built, then again
// when the response's Cache-Control max-age (or Expires) runs out, bounded
// by MinRefresh and MaxRefresh, revalidating with If-None-Match so an
// unchanged set costs a 304. A token whose kid it does not know makes it
// fetch at once, at most every RefreshUnknownKidInterval, and concurrent
// callers share that one fetch. A fetch that fails, or answers anything but
// a JWKS with a usable key, keeps the last good set; it is logged and
// retried with jittered exponential backoff.
//
// Verify tokens with NewRemoteVerifier. A RemoteKeySet is safe for
// concurrent use; Close it, or end the context it was built with, to stop
// its refresher.
type RemoteKeySet struct {
	url    string // to fetch
	logURL string // to log: without any password
	opts   RemoteOptions
	client *http.Client

	ctx    context.Context // ends the refresher and any fetch
	cancel context.CancelFunc
	done   chan struct{} // closed when the refresher has returned
	kick   chan struct{} // wakes the refresher after another fetch
	keys   atomic.Pointer[KeySet]

	mu             sync.Mutex
	inflight       *fetchCall // the fetch under way, if any
	etag           string     // of the current set
	interval       time.Duration
	next           time.Time // when the refresher fetches next
	failures       int       // consecutive
	lastUnknownKid time.Time // when an unknown kid last started a fetch
	stats          RemoteStats
}

// fetchCall is one fetch, shared by every caller that waits for it.
type fetchCall struct {
	done       chan struct{} // closed when the fetch is over and its outcome applied
	err        error
	etag       string // sent as If-None-Match
	unknownKid bool
}

// RemoteStats count what a RemoteKeySet has done, for tests and metrics.
type RemoteStats struct {
	Fetches             int64 // fetches attempted
	Updates             int64 // 200 answers whose set replaced the current one
	NotModified         int64 // 304 answers: the set is current
	Failures            int64 // fetches that kept the last good set
	UnknownKidRefreshes int64 // fetches an unknown kid started
	UnknownKidWaits     int64 // unknown kids that waited for a fetch under way
	UnknownKidLimited   int64 // unknown kids that fetched nothing: the interval had not passed

	Keys                int       // in the current set
	ConsecutiveFailures int       // since the last good answer
	LastError           error     // of the last fetch; nil if it succeeded
	LastSuccess         time.Time // of the last 200 or 304
	NextRefresh         time.Time // when the refresher fetches next
}

// NewRemoteKeySet fetches the JWKS at rawURL and returns a set that keeps
// it current until ctx ends or Close is called. The first fetch is
// synchronous: it fails if the endpoint cannot be reached or serves no
// usable key, for a set that starts empty would refuse every token. rawURL
// must be https, or http to a loopback host or with opts.AllowHTTP.
func NewRemoteKeySet(ctx context.Context, rawURL string, opts RemoteOptions) (*RemoteKeySet, error) {
	opts.setDefaults()
	if err := opts.Validate(); err != nil {
		return nil, err
	}
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("remote key set: %w", err)
	}
	if err := checkJWKSURL(u, opts.AllowHTTP); err != nil {
		return nil, fmt.Errorf("remote key set: %w", err)
	}
	r := &RemoteKeySet{
		url:    u.String(),
		logURL: u.Redacted(),
		opts:   opts,
		client: remoteClient(opts.Client, opts.AllowHTTP),
		done:   make(chan struct{}),
		kick:   make(chan struct{}, 1),
	}
	r.ctx, r.cancel = context.WithCancel(ctx)
	if err := r.fetch(false); err != nil {
		r.cancel()
		return nil, fmt.Errorf("remote key set: first fetch of %s: %w", r.logURL, err)
	}
	go r.run()
	return r, nil
}

// checkJWKSURL allows https, and http only to loopback or when allowed:
// whoever can change the JWKS in transit can mint tokens we accept.
func checkJWKSURL(u *url.URL, allowHTTP bool) error {
	if u.Hostname() == "" {
		return fmt.Errorf("JWKS URL %q has no host", u.Redacted())
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if allowHTTP || isLoopback(u.Hostname()) {
			return nil
		}
		return fmt.Errorf("JWKS URL %q is plain http to a host that is not loopback; use https (or AllowHTTP)", u.Redacted())
	}
	return fmt.Errorf("JWKS URL %q is not http(s)", u.Redacted())
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// remoteClient returns the client to fetch with: the caller's, whose
// redirects must also pass checkJWKSURL, or a default with timeouts.
func remoteClient(given *http.Client, allowHTTP bool) *http.Client {
	var c http.Client
	if given != nil {
		c = *given
	} else {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.ResponseHeaderTimeout = DefaultFetchTimeout
		t.MaxResponseHeaderBytes = 64 << 10
		c = http.Client{Transport: t, Timeout: DefaultFetchTimeout}
	}
	next := c.CheckRedirect
	c.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		if len(via) >= 5 {
			return errors.New("stopped after 5 redirects")
		}
		if err := checkJWKSURL(req.URL, allowHTTP); err != nil {
			return err
		}
		if next != nil {
			return next(req, via)
		}
		return nil
	}
	return &c
}

// lookup returns the key kid names. An unknown kid makes the set fetch
// the JWKS, unless it did so for an unknown kid within the interval: then
// it answers from the set it has, at once.
func (r *RemoteKeySet) lookup(kid string) (verifyingKey, bool) {
	if k, ok := r.keys.Load().lookup(kid); ok {
		return k, true
	}
	if r.refreshUnknownKid() {
		if k, ok := r.keys.Load().lookup(kid); ok {
			return k, true
		}
		// The fetch it waited for may have started before the key was
		// published: try for one of its own, within the same limit.
		r.refreshUnknownKid()
	}
	// Look again even when nothing was fetched: a fetch that ended since
	// the first look may have brought the key.
	return r.keys.Load().lookup(kid)
}

// refreshUnknownKid waits for the fetch under way and reports that it
// did; or else starts one, if the interval has passed since an unknown kid
// last did; or else returns at once.
func (r *RemoteKeySet) refreshUnknownKid() (waited bool) {
	r.mu.Lock()
	if c := r.inflight; c != nil {
		r.stats.UnknownKidWaits++
		r.mu.Unlock()
		<-c.done
		return true
	}
	now := r.opts.Now()
	if r.ctx.Err() != nil || !r.lastUnknownKid.IsZero() && now.Sub(r.lastUnknownKid) < r.opts.RefreshUnknownKidInterval {
		r.stats.UnknownKidLimited++
		r.mu.Unlock()
		return false
	}
	r.lastUnknownKid = now
	r.stats.UnknownKidRefreshes++
	c := r.startLocked(true)
	r.mu.Unlock()
	r.opts.Logger.Debug("unknown kid: fetching the JWKS", "url", r.logURL)
	r.perform(c)
	r.wake() // the refresher's timer is now wrong
	return false
}

// Refresh fetches the JWKS now, or waits for the fetch under way, and
// returns its error; the set is kept either way unless a good one came.
// Use it after an emergency rotation; Verify needs no call.
func (r *RemoteKeySet) Refresh() error {
	if r.ctx.Err() != nil {
		return errors.New("remote key set is closed")
	}
	err := r.fetch(false)
	r.wake()
	return err
}

// fetch starts a fetch and performs it in the caller's goroutine, or
// waits for the one under way, and returns its error.
func (r *RemoteKeySet) fetch(unknownKid bool) error {
	r.mu.Lock()
	c := r.inflight
	if c != nil {
		r.mu.Unlock()
		<-c.done
		return c.err
	}
	c = r.startLocked(unknownKid)
	r.mu.Unlock()
	r.perform(c)
	return c.err
}

func (r *RemoteKeySet) startLocked(unknownKid bool) *fetchCall {
	c := &fetchCall{done: make(chan struct{}), etag: r.etag, unknownKid: unknownKid}
	r.inflight = c
	return c
}

func (r *RemoteKeySet) wake() {
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// run fetches the JWKS whenever it is due, until the context ends.
func (r *RemoteKeySet) run() {
	defer close(r.done)
	for {
		r.mu.Lock()
		next := r.next
		r.mu.Unlock()
		select {
		case <-r.ctx.Done():
			return
		case <-r.kick:
		case <-r.opts.After(max(next.Sub(r.opts.Now()), 0)):
			r.mu.Lock()
			due := !r.opts.Now().Before(r.next)
			r.mu.Unlock()
			if due { // else another fetch moved the time on
				r.fetch(false)
			}
		}
	}
}

// perform runs the fetch c and applies its outcome before any waiter
// sees it: a good set replaces the current one; anything else keeps it
// and schedules a retry.
func (r *RemoteKeySet) perform(c *fetchCall) {
	res := r.get(c)
	now := r.opts.Now()

	r.mu.Lock()
	old := r.keys.Load()
	r.stats.Fetches++
	recovered := 0
	if res.err != nil {
		r.failures++
		r.stats.Failures++
		r.stats.LastError = res.err
		r.next = now.Add(r.backoffLocked())
	} else {
		if res.keys != nil {
			r.keys.Store(res.keys)
			r.etag = res.etag
			r.stats.Updates++
		} else {
			r.stats.NotModified++
		}
		switch {
		case res.fresh >= 0:
			r.interval = min(max(res.fresh, r.opts.MinRefresh), r.opts.MaxRefresh)
		case res.keys != nil || r.interval == 0:
			r.interval = min(max(DefaultRefresh, r.opts.MinRefresh), r.opts.MaxRefresh)
		} // a 304 that says nothing of freshness keeps the interval
		r.next = now.Add(r.interval)
		recovered, r.failures = r.failures, 0
		r.stats.LastError = nil
		r.stats.LastSuccess = now
	}
	failures, next := r.failures, r.next
	r.inflight = nil
	r.mu.Unlock()

	c.err = res.err
	close(c.done)

	log := r.opts.Logger
	switch {
	case res.err != nil && old == nil:
		// The first fetch: NewRemoteKeySet returns the error.
	case res.err != nil:
		log.Warn("JWKS refresh failed; keeping the last good key set",
			"url", r.logURL, "err", res.err, "consecutive_failures", failures, "retry_in", next.Sub(now).Round(time.Millisecond))
	case res.keys != nil && old != nil:
		if added, removed := diffKids(old, res.keys); len(added)+len(removed) > 0 {
			log.Info("JWKS changed", "url", r.logURL, "added", added, "removed", removed, "keys", len(res.keys.keys))
		}
	}
	if recovered > 0 {
		log.Info("JWKS refresh recovered", "url", r.logURL, "after_failures", recovered)
	}
}

// backoffLocked returns how long to wait after r.failures failures in a
// row: from one second, doubling, never longer than the refresh interval,
// with jitter so that verifiers that failed together do not retry
// together.
func (r *RemoteKeySet) backoffLocked() time.Duration {
	ceiling := r.interval
	if ceiling == 0 {
		ceiling = r.opts.MinRefresh
	}
	d := min(time.Second<<min(r.failures-1, 30), ceiling)
	return d/2 + rand.N(d/2+1)
}

func diffKids(old, cur *KeySet) (added, removed []string) {
	for kid := range cur.keys {
		if _, ok := old.keys[kid]; !ok {
			added = append(added, kid)
		}
	}
	for kid := range old.keys {
		if _, ok := cur.keys[kid]; !ok {
			removed = append(removed, kid)
		}
	}
	slices.Sort(added)
	slices.Sort(removed)
	return added, removed
}

// fetchResult is what one request brought.
type fetchResult struct {
	keys  *KeySet       // the new set; nil on 304 or failure
	etag  string        // of keys
	fresh time.Duration // how long the answer stays fresh; -1 if it does not say
	err   error
}

// get sends one request and reads the answer: 304 keeps the set; 200 must
// be a JSON body within the size cap holding a usable JWKS.
func (r *RemoteKeySet) get(c *fetchCall) fetchResult {
	ctx, cancel := context.WithTimeout(r.ctx, r.opts.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return fetchResult{err: err}
	}
	req.Header.Set("Accept", "application/jwk-set+json, application/json")
	if c.etag != "" {
		req.Header.Set("If-None-Match", c.etag)
	}
	if c.unknownKid {
		// A cache between us and the issuer may hold the set from before
		// the key we are looking for: ask it to revalidate.
		req.Header.Set("Cache-Control", "no-cache")
	}
	resp, err := r.client.Do(req)
	if err != nil {
		return fetchResult{err: err}
	}
	defer func() {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10)) // lets a small remainder keep the connection
		resp.Body.Close()
	}()
	fresh := freshness(resp.Header, r.opts.Now())
	switch resp.StatusCode {
	case http.StatusNotModified:
		if c.etag == "" {
			return fetchResult{err: errors.New("304 Not Modified to a request that named no set")}
		}
		return fetchResult{fresh: fresh}
	case http.StatusOK:
	default:
		return fetchResult{err: fmt.Errorf("status %s", resp.Status)}
	}
	if mt, _, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err != nil ||
		mt != "application/json" && mt != "application/jwk-set+json" {
		return fetchResult{err: fmt.Errorf("content type %q is not JSON", resp.Header.Get("Content-Type"))}
	}
	limit := r.opts.MaxResponseSize
	if resp.ContentLength > limit {
		return fetchResult{err: fmt.Errorf("JWKS of %d bytes is over the %d-byte cap", resp.ContentLength, limit)}
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return fetchResult{err: fmt.Errorf("read JWKS: %w", err)}
	}
	if int64(len(body)) > limit {
		return fetchResult{err: fmt.Errorf("JWKS is over the %d-byte cap", limit)}
	}
	ks, err := ParseJWKS(body)
	if err != nil {
		return fetchResult{err: err}
	}
	return fetchResult{keys: ks, etag: resp.Header.Get("ETag"), fresh: fresh}
}

// maxDeltaSeconds is the largest delta-seconds a cache need handle
// (RFC 9111 §1.2.2).
const maxDeltaSeconds = 1 << 31

// freshness returns how long a response stays fresh (RFC 9111 §4.2): its
// Cache-Control max-age, or else Expires less Date, less its Age; zero
// for no-cache, no-store or an invalid value, which RFC 9111 treats as
// stale; -1 when it says nothing.
func freshness(h http.Header, now time.Time) time.Duration {
	lifetime := time.Duration(-1)
	maxAge, noCache := -1, false
	for _, line := range h.Values("Cache-Control") {
		for _, d := range strings.Split(line, ",") {
			name, value, _ := strings.Cut(strings.TrimSpace(d), "=")
			switch strings.ToLower(name) {
			case "no-cache", "no-store":
				noCache = true
			case "max-age":
				n, err := strconv.ParseUint(strings.Trim(value, `"`), 10, 64)
				if errors.Is(err, strconv.ErrRange) {
					n, err = maxDeltaSeconds, nil
				}
				if err != nil || maxAge != -1 { // malformed, or twice
					noCache = true
				}
				maxAge = int(min(n, maxDeltaSeconds))
			}
		}
	}
	switch {
	case noCache:
		return 0
	case maxAge >= 0:
		lifetime = time.Duration(maxAge) * time.Second
	case h.Get("Expires") != "":
		expires, err := http.ParseTime(h.Get("Expires"))
		if err != nil {
			return 0
		}
		date, err := http.ParseTime(h.Get("Date"))
		if err != nil {
			date = now
		}
		lifetime = max(expires.Sub(date), 0)
	default:
		return -1
	}
	if age, err := strconv.ParseUint(h.Get("Age"), 10, 64); err == nil {
		lifetime -= time.Duration(min(age, maxDeltaSeconds)) * time.Second
	}
	return max(lifetime, 0)
}

// Close stops the refresher and waits for it to return. The set keeps
// answering from the keys it has, but fetches no more.
func (r *RemoteKeySet) Close() {
	r.cancel()
	<-r.done
}

// Stats returns what the set has done so far.
func (r *RemoteKeySet) Stats() RemoteStats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.Keys = len(r.keys.Load().keys)
	s.ConsecutiveFailures = r.failures
	s.NextRefresh = r.next
	return s
}

// NewRemoteVerifier returns a Verifier of tokens signed by the keys of a
// RemoteKeySet. It makes every check NewVerifier's does; only where the
// keys come from differs.
func NewRemoteVerifier(keys *RemoteKeySet, opts VerifyOptions) (*Verifier, error) {
	return newVerifier(keys, keys == nil, opts)
}
