package tokens_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/testenv"
	"github.com/authworker/authworker/tokens"
)

// patience bounds every wait for another goroutine, so that a test that
// fails hangs no longer than this. No assertion depends on it.
const patience = 10 * time.Second

// fakeClock is the RemoteKeySet's clock in tests: time moves only when the
// test advances it, and every timer the refresher arms is reported, with
// its duration, on armed. Receiving from armed is how a test knows the
// refresher has finished the fetch before it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
	armed  chan time.Duration
}

type fakeTimer struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC), armed: make(chan time.Duration, 64)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
	} else {
		c.timers = append(c.timers, fakeTimer{at: c.now.Add(d), ch: ch})
	}
	select {
	case c.armed <- d:
	default:
		panic("fakeClock: 64 timers armed and none read")
	}
	return ch
}

// Advance moves time on by d and fires the timers then due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	pending := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			pending = append(pending, t)
		} else {
			t.ch <- c.now
		}
	}
	c.timers = pending
}

// nextArm waits for the refresher to arm its next timer and returns how far
// ahead it is set.
func (c *fakeClock) nextArm(t testing.TB) time.Duration {
	t.Helper()
	select {
	case d := <-c.armed:
		return d
	case <-time.After(patience):
		t.Fatal("the refresher armed no timer")
		return 0
	}
}

// refreshInBackground lets the armed timer fire and waits until the
// refresher has fetched and armed the next one, whose duration it returns.
func (c *fakeClock) refreshInBackground(t testing.TB, armed time.Duration) time.Duration {
	t.Helper()
	c.Advance(armed)
	return c.nextArm(t)
}

// jwksServer serves a JWKS over loopback http, as the worker does, with
// whatever headers, ETags and failures a test sets.
type jwksServer struct {
	srv *httptest.Server

	mu          sync.Mutex
	body        []byte
	header      http.Header // on every answer, 200 or 304
	etags       bool        // send a strong ETag and answer If-None-Match with 304
	broken      http.HandlerFunc
	gate        chan struct{} // when set, requests wait until it closes
	requests    int64
	arrived     chan struct{} // closed and replaced at each request
	lastRequest http.Header
}

func newJWKSServer(t testing.TB, keys map[string]jwsKey) *jwksServer {
	t.Helper()
	s := &jwksServer{body: jwksJSON(t, keys), header: http.Header{}, arrived: make(chan struct{})}
	s.srv = httptest.NewServer(s)
	t.Cleanup(func() {
		s.release()
		s.srv.Close()
	})
	return s
}

func (s *jwksServer) URL() string { return s.srv.URL + "/.well-known/jwks.json" }

func (s *jwksServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	s.requests++
	close(s.arrived)
	s.arrived = make(chan struct{})
	s.lastRequest = r.Header.Clone()
	body, etags, broken, gate := s.body, s.etags, s.broken, s.gate
	for name, values := range s.header {
		w.Header()[name] = values
	}
	s.mu.Unlock()
	if gate != nil {
		<-gate
	}
	if broken != nil {
		broken(w, r)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	if etags {
		sum := sha256.Sum256(body)
		etag := `"` + hex.EncodeToString(sum[:8]) + `"`
		w.Header().Set("ETag", etag)
		if r.Header.Get("If-None-Match") == etag {
			w.WriteHeader(http.StatusNotModified)
			return
		}
	}
	w.Write(body)
}

func (s *jwksServer) publish(t testing.TB, keys map[string]jwsKey) {
	t.Helper()
	body := jwksJSON(t, keys)
	s.mu.Lock()
	defer s.mu.Unlock()
	s.body = body
}

func (s *jwksServer) setHeader(name, value string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if value == "" {
		s.header.Del(name)
	} else {
		s.header.Set(name, value)
	}
}

func (s *jwksServer) setETags(on bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.etags = on
}

func (s *jwksServer) breakWith(h http.HandlerFunc) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.broken = h
}

// hold makes requests wait until release.
func (s *jwksServer) hold() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gate = make(chan struct{})
}

func (s *jwksServer) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.gate != nil {
		close(s.gate)
		s.gate = nil
	}
}

func (s *jwksServer) count() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.requests
}

func (s *jwksServer) last() http.Header {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.lastRequest
}

// waitRequests waits until the server has received n requests in all.
func (s *jwksServer) waitRequests(t testing.TB, n int64) {
	t.Helper()
	deadline := time.After(patience)
	for {
		s.mu.Lock()
		got, arrived := s.requests, s.arrived
		s.mu.Unlock()
		if got >= n {
			return
		}
		select {
		case <-arrived:
		case <-deadline:
			t.Fatalf("the server received %d requests, want %d", got, n)
		}
	}
}

// newRemoteKeySet builds a set over s on clock, quiet unless opts has a
// logger, and closes it when the test ends.
func newRemoteKeySet(t testing.TB, s *jwksServer, clock *fakeClock, opts tokens.RemoteOptions) *tokens.RemoteKeySet {
	t.Helper()
	opts.Now, opts.After = clock.Now, clock.After
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	ks, err := tokens.NewRemoteKeySet(context.Background(), s.URL(), opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ks.Close)
	return ks
}

// tokenNow is when the tests' tokens are signed and verified; the key
// set's clock is another, fake one.
var tokenNow = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func remoteVerifier(t testing.TB, ks *tokens.RemoteKeySet) *tokens.Verifier {
	t.Helper()
	v, err := tokens.NewRemoteVerifier(ks, tokens.VerifyOptions{
		Issuer: "https://auth.example.com", Audience: "api", Now: func() time.Time { return tokenNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// signed is a valid access token signed by k under kid.
func signed(t testing.TB, k jwsKey, kid string) string {
	t.Helper()
	f := forger{t: t, now: tokenNow}
	return f.sign(k, f.header(k.method.Alg(), kid), f.claims())
}

func mustVerify(t testing.TB, v *tokens.Verifier, token, what string) {
	t.Helper()
	if _, err := v.Verify(token); err != nil {
		t.Fatalf("%s: Verify = %v, want OK", what, err)
	}
}

func mustReject(t testing.TB, v *tokens.Verifier, token, what string) {
	t.Helper()
	if _, err := v.Verify(token); domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("%s: Verify = %v, want CodeUnauthorized", what, err)
	}
}

var algorithms = []struct {
	alg string
	key func(testing.TB) jwsKey
}{
	{tokens.EdDSA, newEdDSAKey},
	{tokens.ES256, newES256Key},
	{tokens.RS256, newRS256Key},
}

// TestRemoteKeySetFollowsRotation walks a planned rotation for each
// algorithm: the new key is published before it signs and the refresher
// picks it up on schedule, with no unknown kid; the retired key stops
// verifying once it is no longer published.
func TestRemoteKeySetFollowsRotation(t *testing.T) {
	for _, a := range algorithms {
		t.Run(a.alg, func(t *testing.T) {
			old, next := a.key(t), a.key(t)
			s := newJWKSServer(t, map[string]jwsKey{"old": old})
			s.setHeader("Cache-Control", "public, max-age=300")
			clock := newFakeClock()
			ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{})
			v := remoteVerifier(t, ks)
			armed := clock.nextArm(t)

			mustVerify(t, v, signed(t, old, "old"), "the current key")
			if _, err := v.Verify(signed(t, old, "old") + "x"); err == nil {
				t.Fatal("a tampered token verified")
			}
			mustReject(t, remoteVerifierFor(t, ks, "billing"), signed(t, old, "old"), "a token for api, verified for billing")

			s.publish(t, map[string]jwsKey{"old": old, "next": next}) // published ahead
			armed = clock.refreshInBackground(t, armed)
			mustVerify(t, v, signed(t, next, "next"), "the key published ahead, once it signs")
			mustVerify(t, v, signed(t, old, "old"), "the retiring key, still published")

			s.publish(t, map[string]jwsKey{"next": next}) // every token of old has expired
			clock.refreshInBackground(t, armed)
			mustReject(t, v, signed(t, old, "old"), "the retired key")
			mustVerify(t, v, signed(t, next, "next"), "the current key")

			// Three scheduled fetches, and one for the retired kid, which was
			// unknown by then.
			st := ks.Stats()
			if st.Fetches != 4 || st.UnknownKidRefreshes != 1 || st.Keys != 1 || s.count() != 4 {
				t.Errorf("stats = %+v after %d requests, want 4 fetches, 1 for an unknown kid, and 1 key", st, s.count())
			}
		})
	}
}

func remoteVerifierFor(t testing.TB, ks *tokens.RemoteKeySet, audience string) *tokens.Verifier {
	t.Helper()
	v, err := tokens.NewRemoteVerifier(ks, tokens.VerifyOptions{
		Issuer: "https://auth.example.com", Audience: audience, Now: func() time.Time { return tokenNow },
	})
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRemoteKeySetCacheControl: the refresher waits as long as the answer
// says it stays fresh, within MinRefresh and MaxRefresh.
func TestRemoteKeySetCacheControl(t *testing.T) {
	date := "Sat, 28 Nov 2026 12:00:00 GMT"
	tests := []struct {
		name    string
		header  map[string]string
		opts    tokens.RemoteOptions
		wantDue time.Duration
	}{
		{"MaxAge", map[string]string{"Cache-Control": "public, max-age=300"}, tokens.RemoteOptions{}, 5 * time.Minute},
		{"MaxAgeAmongOthers", map[string]string{"Cache-Control": "must-revalidate, max-age=120, public"}, tokens.RemoteOptions{}, 2 * time.Minute},
		{"MaxAgeQuoted", map[string]string{"Cache-Control": `max-age="120"`}, tokens.RemoteOptions{}, 2 * time.Minute},
		{"MaxAgeUpperCase", map[string]string{"Cache-Control": "MAX-AGE=120"}, tokens.RemoteOptions{}, 2 * time.Minute},
		{"MaxAgeLessAge", map[string]string{"Cache-Control": "max-age=600", "Age": "240"}, tokens.RemoteOptions{}, 6 * time.Minute},
		{"ShortMaxAgeRaisedToMinRefresh", map[string]string{"Cache-Control": "max-age=5"}, tokens.RemoteOptions{}, time.Minute},
		{"MaxAgeZero", map[string]string{"Cache-Control": "max-age=0"}, tokens.RemoteOptions{}, time.Minute},
		{"LongMaxAgeCutToMaxRefresh", map[string]string{"Cache-Control": "max-age=31536000"}, tokens.RemoteOptions{}, time.Hour},
		{"HugeMaxAge", map[string]string{"Cache-Control": "max-age=99999999999999999999"}, tokens.RemoteOptions{}, time.Hour},
		{"NoCache", map[string]string{"Cache-Control": "no-cache"}, tokens.RemoteOptions{}, time.Minute},
		{"NoStore", map[string]string{"Cache-Control": "no-store, max-age=300"}, tokens.RemoteOptions{}, time.Minute},
		{"MalformedMaxAge", map[string]string{"Cache-Control": "max-age=soon"}, tokens.RemoteOptions{}, time.Minute},
		{"MaxAgeTwice", map[string]string{"Cache-Control": "max-age=300, max-age=600"}, tokens.RemoteOptions{}, time.Minute},
		{"Expires", map[string]string{"Date": date, "Expires": "Sat, 28 Nov 2026 12:10:00 GMT"}, tokens.RemoteOptions{}, 10 * time.Minute},
		{"ExpiresInThePast", map[string]string{"Date": date, "Expires": "Sat, 28 Nov 2026 11:00:00 GMT"}, tokens.RemoteOptions{}, time.Minute},
		{"ExpiresInvalid", map[string]string{"Date": date, "Expires": "0"}, tokens.RemoteOptions{}, time.Minute},
		{"MaxAgeOverExpires", map[string]string{"Cache-Control": "max-age=120", "Date": date, "Expires": "Sat, 28 Nov 2026 12:10:00 GMT"}, tokens.RemoteOptions{}, 2 * time.Minute},
		{"Silent", nil, tokens.RemoteOptions{}, tokens.DefaultRefresh},
		{"CustomCeiling", map[string]string{"Cache-Control": "max-age=300"}, tokens.RemoteOptions{MinRefresh: 10 * time.Second, MaxRefresh: 2 * time.Minute}, 2 * time.Minute},
		{"CustomFloor", map[string]string{"Cache-Control": "max-age=5"}, tokens.RemoteOptions{MinRefresh: 10 * time.Second}, 10 * time.Second},
		{"SilentWithinCustomBounds", nil, tokens.RemoteOptions{MinRefresh: 10 * time.Minute, MaxRefresh: 20 * time.Minute}, 10 * time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t, map[string]jwsKey{"ed": newEdDSAKey(t)})
			for name, value := range tt.header {
				s.setHeader(name, value)
			}
			clock := newFakeClock()
			ks := newRemoteKeySet(t, s, clock, tt.opts)
			if got := clock.nextArm(t); got != tt.wantDue {
				t.Errorf("next refresh in %v, want %v", got, tt.wantDue)
			}
			if got := ks.Stats().NextRefresh; !got.Equal(clock.Now().Add(tt.wantDue)) {
				t.Errorf("Stats().NextRefresh = %v, want now + %v", got, tt.wantDue)
			}
			// Not due yet: a moment short of it fetches nothing.
			clock.Advance(tt.wantDue - time.Second)
			if n := s.count(); n != 1 {
				t.Fatalf("%d requests before the refresh was due, want 1", n)
			}
			clock.refreshInBackground(t, time.Second)
			if n := s.count(); n != 2 {
				t.Errorf("%d requests once the refresh was due, want 2", n)
			}
		})
	}
}

// TestRemoteKeySetETag: the set revalidates with If-None-Match; a 304 keeps
// it and resets the timer from the 304's own Cache-Control (keeping the
// interval when it has none), and a changed set comes whole with a new
// ETag.
func TestRemoteKeySetETag(t *testing.T) {
	ours, next := newEdDSAKey(t), newES256Key(t)
	s := newJWKSServer(t, map[string]jwsKey{"ed": ours})
	s.setETags(true)
	s.setHeader("Cache-Control", "max-age=300")
	clock := newFakeClock()
	ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{})
	v := remoteVerifier(t, ks)
	armed := clock.nextArm(t)
	if got := s.last().Get("If-None-Match"); got != "" {
		t.Errorf("first request had If-None-Match %q", got)
	}

	armed = clock.refreshInBackground(t, armed)
	if s.last().Get("If-None-Match") == "" {
		t.Fatal("the refresh did not revalidate with If-None-Match")
	}
	if st := ks.Stats(); st.NotModified != 1 || st.Updates != 1 || st.Failures != 0 {
		t.Fatalf("stats = %+v, want one update and one 304", st)
	}
	if armed != 5*time.Minute {
		t.Errorf("after a 304 the next refresh is in %v, want the 304's max-age, 5m", armed)
	}
	mustVerify(t, v, signed(t, ours, "ed"), "the key after a 304")

	s.setHeader("Cache-Control", "max-age=120")
	if armed = clock.refreshInBackground(t, armed); armed != 2*time.Minute {
		t.Errorf("after a 304 with max-age=120 the next refresh is in %v, want 2m", armed)
	}
	s.setHeader("Cache-Control", "")
	if armed = clock.refreshInBackground(t, armed); armed != 2*time.Minute {
		t.Errorf("after a 304 without Cache-Control the next refresh is in %v, want the interval kept, 2m", armed)
	}

	s.publish(t, map[string]jwsKey{"ed": ours, "es": next})
	s.setHeader("Cache-Control", "max-age=300")
	clock.refreshInBackground(t, armed)
	if st := ks.Stats(); st.NotModified != 3 || st.Updates != 2 || st.Keys != 2 {
		t.Fatalf("stats = %+v, want 3 304s, 2 updates, 2 keys", st)
	}
	mustVerify(t, v, signed(t, next, "es"), "the key a changed ETag brought")
	if st := ks.Stats(); st.UnknownKidRefreshes != 0 {
		t.Errorf("%d unknown-kid refreshes, want none", st.UnknownKidRefreshes)
	}
}

// verifyAll verifies each token from its own goroutine, all released at
// once while the server holds its answers, and returns how many verified.
// The server answers once the n-th request has arrived.
func verifyAll(t *testing.T, s *jwksServer, v *tokens.Verifier, toks []string, n int64) int64 {
	t.Helper()
	s.hold()
	start := make(chan struct{})
	var ok atomic.Int64
	var wg sync.WaitGroup
	for _, tok := range toks {
		wg.Go(func() {
			<-start
			if _, err := v.Verify(tok); err == nil {
				ok.Add(1)
			}
		})
	}
	close(start)
	s.waitRequests(t, n)
	s.release()
	wg.Wait()
	return ok.Load()
}

// TestRemoteKeySetUnknownKidFlood: a thousand tokens with forged kids,
// verified at once, cost the endpoint one request, and no more until the
// interval has passed, however many follow.
func TestRemoteKeySetUnknownKidFlood(t *testing.T) {
	ours, attacker := newEdDSAKey(t), newEdDSAKey(t)
	s := newJWKSServer(t, map[string]jwsKey{"ed": ours})
	clock := newFakeClock()
	ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{})
	v := remoteVerifier(t, ks)
	clock.nextArm(t)

	forged := make([]string, 1000)
	for i := range forged {
		forged[i] = signed(t, attacker, fmt.Sprintf("forged-%d", i))
	}
	if n := verifyAll(t, s, v, forged, 2); n != 0 {
		t.Fatalf("%d forged tokens verified", n)
	}
	if n := s.count(); n != 2 {
		t.Fatalf("1000 forged kids made %d requests, want 1 after the first fetch", n-1)
	}
	if got := s.last().Get("Cache-Control"); got != "no-cache" {
		t.Errorf("the unknown-kid fetch sent Cache-Control %q, want no-cache so that caches revalidate", got)
	}
	st := ks.Stats()
	if st.UnknownKidRefreshes != 1 {
		t.Errorf("stats = %+v, want 1 unknown-kid refresh", st)
	}
	clock.nextArm(t) // the refresher rescheduled after that fetch
	mustVerify(t, v, signed(t, ours, "ed"), "our key during the flood")

	// Within the interval: refused at once, no request.
	clock.Advance(tokens.DefaultRefreshUnknownKidInterval - time.Second)
	for _, tok := range forged[:100] {
		mustReject(t, v, tok, "a forged kid")
	}
	if n := s.count(); n != 2 {
		t.Fatalf("forged kids within the interval made %d more requests", n-2)
	}
	if got := ks.Stats().UnknownKidLimited - st.UnknownKidLimited; got != 100 {
		t.Errorf("%d unknown kids counted as limited, want 100", got)
	}

	// Once it has passed, the next flood buys one request again.
	clock.Advance(time.Second)
	if n := verifyAll(t, s, v, forged, 3); n != 0 {
		t.Fatalf("%d forged tokens verified", n)
	}
	if n := s.count(); n != 3 {
		t.Fatalf("the second flood made %d requests, want 1", n-2)
	}
	if st := ks.Stats(); st.UnknownKidRefreshes != 2 || st.Fetches != 3 {
		t.Errorf("stats = %+v, want 2 unknown-kid refreshes in 3 fetches", st)
	}
}

// TestRemoteKeySetEmergencyRotation: a key that signs as soon as it is
// published is unknown to the set; the first of a thousand concurrent
// tokens it signed fetches the set, the others wait for that fetch, and all
// verify.
func TestRemoteKeySetEmergencyRotation(t *testing.T) {
	for _, a := range algorithms {
		t.Run(a.alg, func(t *testing.T) {
			old, emergency := a.key(t), a.key(t)
			s := newJWKSServer(t, map[string]jwsKey{"old": old})
			clock := newFakeClock()
			ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{})
			v := remoteVerifier(t, ks)
			clock.nextArm(t)

			s.publish(t, map[string]jwsKey{"old": old, "emergency": emergency})
			toks := make([]string, 1000)
			tok := signed(t, emergency, "emergency")
			for i := range toks {
				toks[i] = tok
			}
			if n := verifyAll(t, s, v, toks, 2); n != 1000 {
				t.Fatalf("%d of 1000 tokens of the new key verified", n)
			}
			if n, st := s.count(), ks.Stats(); n != 2 || st.UnknownKidRefreshes != 1 || st.Keys != 2 {
				t.Errorf("%d requests, stats %+v; want 2 requests, 1 unknown-kid refresh, 2 keys", n, st)
			}
		})
	}
}

// TestRemoteKeySetUnknownKidDuringScheduledFetch: a token of a key
// published while a scheduled fetch was under way waits for that fetch,
// which brings the set from before the key, and then fetches for itself.
func TestRemoteKeySetUnknownKidDuringScheduledFetch(t *testing.T) {
	old, emergency := newEdDSAKey(t), newEdDSAKey(t)
	s := newJWKSServer(t, map[string]jwsKey{"old": old})
	clock := newFakeClock()
	ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{})
	v := remoteVerifier(t, ks)
	armed := clock.nextArm(t)

	s.hold()
	clock.Advance(armed) // the scheduled fetch goes out, and its answer is the set without the key
	s.waitRequests(t, 2)
	s.publish(t, map[string]jwsKey{"old": old, "emergency": emergency})
	result := make(chan error, 1)
	token := signed(t, emergency, "emergency")
	go func() {
		_, err := v.Verify(token)
		result <- err
	}()
	waitFor(t, "Verify to wait for the scheduled fetch", func() bool { return ks.Stats().UnknownKidWaits == 1 })
	s.release()
	select {
	case err := <-result:
		if err != nil {
			t.Fatalf("Verify = %v, want OK", err)
		}
	case <-time.After(patience):
		t.Fatal("Verify did not return")
	}
	if st := ks.Stats(); st.Fetches != 3 || st.UnknownKidRefreshes != 1 {
		t.Errorf("stats = %+v, want 3 fetches, the last for the unknown kid", st)
	}
}

// waitFor waits until cond holds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(patience)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}

// hangUp closes the connection without an answer.
func hangUp(w http.ResponseWriter, _ *http.Request) {
	conn, _, err := w.(http.Hijacker).Hijack()
	if err == nil {
		conn.Close()
	}
}

func answer(status int, contentType, body string) http.HandlerFunc {
	return func(w http.ResponseWriter, _ *http.Request) {
		if contentType != "" {
			w.Header().Set("Content-Type", contentType)
		}
		w.WriteHeader(status)
		w.Write([]byte(body))
	}
}

// TestRemoteKeySetKeepsLastGoodSet: whatever the endpoint answers instead
// of a usable JWKS, the set keeps the keys it has, counts a failure and
// retries after a backoff; a good answer then brings it back.
func TestRemoteKeySetKeepsLastGoodSet(t *testing.T) {
	ours := newEdDSAKey(t)
	other := string(jwksJSON(t, map[string]jwsKey{"other": newEdDSAKey(t)}))
	tests := []struct {
		name   string
		broken http.HandlerFunc
	}{
		{"ServerError", answer(http.StatusInternalServerError, "application/json", other)},
		{"Unavailable", answer(http.StatusServiceUnavailable, "text/plain", "down")},
		{"NotFound", answer(http.StatusNotFound, "text/html", "<h1>not found</h1>")},
		{"NoContent", answer(http.StatusNoContent, "application/json", "")},
		{"Partial", answer(http.StatusPartialContent, "application/json", other)},
		{"HTML", answer(http.StatusOK, "text/html", other)},
		{"TextPlain", answer(http.StatusOK, "text/plain; charset=utf-8", other)},
		{"NotJSON", answer(http.StatusOK, "application/json", "<keys/>")},
		{"TruncatedJSON", answer(http.StatusOK, "application/json", other[:len(other)/2])},
		{"EmptySet", answer(http.StatusOK, "application/json", `{"keys":[]}`)},
		{"NoKeysMember", answer(http.StatusOK, "application/json", `{}`)},
		{"Null", answer(http.StatusOK, "application/json", `null`)},
		{"OnlyEncryptionKeys", answer(http.StatusOK, "application/json", strings.ReplaceAll(other, `"use":"sig"`, `"use":"enc"`))},
		{"OnlyUnknownAlgorithms", answer(http.StatusOK, "application/json", strings.ReplaceAll(other, `"alg":"EdDSA"`, `"alg":"HS256"`))},
		{"BrokenKey", answer(http.StatusOK, "application/json", `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA","kid":"k","alg":"EdDSA","use":"sig"}]}`)},
		{"Oversized", answer(http.StatusOK, "application/json", other+strings.Repeat(" ", tokens.DefaultMaxJWKSSize))},
		{"OversizedUnannounced", func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			w.Write([]byte(other))
			w.(http.Flusher).Flush() // chunked: no Content-Length to refuse early
			w.Write(bytes.Repeat([]byte(" "), tokens.DefaultMaxJWKSSize))
		}},
		{"NotModifiedUnasked", answer(http.StatusNotModified, "", "")},
		{"HangUp", hangUp},
		{"Slow", func(w http.ResponseWriter, r *http.Request) { <-r.Context().Done() }},
		{"RedirectToPlainHTTP", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, "http://jwks.example.com/.well-known/jwks.json", http.StatusFound)
		}},
		{"RedirectLoop", func(w http.ResponseWriter, r *http.Request) {
			http.Redirect(w, r, r.URL.String(), http.StatusFound)
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t, map[string]jwsKey{"ed": ours})
			clock := newFakeClock()
			var logs testenv.SyncBuffer
			ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{
				Timeout: 500 * time.Millisecond,
				Logger:  slog.New(slog.NewTextHandler(&logs, nil)),
			})
			v := remoteVerifier(t, ks)
			token := signed(t, ours, "ed")

			s.breakWith(tt.broken)
			if err := ks.Refresh(); err == nil {
				t.Fatal("Refresh succeeded, want an error")
			}
			mustVerify(t, v, token, "the last good key")
			st := ks.Stats()
			if st.Keys != 1 || st.Updates != 1 || st.Failures != 1 || st.ConsecutiveFailures != 1 || st.LastError == nil {
				t.Errorf("stats = %+v, want the first set kept and one failure", st)
			}
			if retry := st.NextRefresh.Sub(clock.Now()); retry < 500*time.Millisecond || retry > time.Second {
				t.Errorf("retry in %v, want the first backoff, 0.5s to 1s", retry)
			}
			if !strings.Contains(logs.String(), "level=WARN msg=\"JWKS refresh failed; keeping the last good key set\"") {
				t.Errorf("the failure was not logged as a warning: %s", logs.String())
			}

			s.breakWith(nil)
			if err := ks.Refresh(); err != nil {
				t.Fatalf("Refresh after the endpoint recovered: %v", err)
			}
			if st := ks.Stats(); st.ConsecutiveFailures != 0 || st.LastError != nil || st.Updates != 2 {
				t.Errorf("stats after recovery = %+v", st)
			}
			mustVerify(t, v, token, "the key after recovery")
			if !strings.Contains(logs.String(), "JWKS refresh recovered") {
				t.Errorf("the recovery was not logged: %s", logs.String())
			}
		})
	}
}

// TestRemoteKeySetEndpointDown: while the endpoint is down the set serves
// its last good keys, and retries with a backoff that doubles, jittered,
// up to the refresh interval; unknown kids still fetch at most once an
// interval. When the endpoint comes back, so does the schedule.
func TestRemoteKeySetEndpointDown(t *testing.T) {
	ours := newEdDSAKey(t)
	s := newJWKSServer(t, map[string]jwsKey{"ed": ours})
	s.setHeader("Cache-Control", "max-age=300")
	clock := newFakeClock()
	ks := newRemoteKeySet(t, s, clock, tokens.RemoteOptions{})
	v := remoteVerifier(t, ks)
	token := signed(t, ours, "ed")
	armed := clock.nextArm(t)

	s.breakWith(hangUp)
	for failures := 1; failures <= 12; failures++ {
		armed = clock.refreshInBackground(t, armed)
		ceiling := min(time.Second<<(failures-1), 5*time.Minute)
		if armed < ceiling/2 || armed > ceiling {
			t.Fatalf("after %d failures the retry is in %v, want %v to %v", failures, armed, ceiling/2, ceiling)
		}
		if st := ks.Stats(); st.ConsecutiveFailures != failures || st.Failures != int64(failures) {
			t.Fatalf("stats = %+v, want %d failures", st, failures)
		}
		mustVerify(t, v, token, "the last good key while the endpoint is down")
	}

	// An unknown kid tries the endpoint once, not again within the interval.
	before := ks.Stats().Fetches
	forged := signed(t, newEdDSAKey(t), "forged")
	mustReject(t, v, forged, "a forged kid while the endpoint is down")
	armed = clock.nextArm(t)
	mustReject(t, v, forged, "a forged kid again")
	if got := ks.Stats().Fetches - before; got != 1 {
		t.Errorf("two unknown kids while down made %d fetches, want 1", got)
	}

	s.breakWith(nil)
	if armed = clock.refreshInBackground(t, armed); armed != 5*time.Minute {
		t.Errorf("after recovery the next refresh is in %v, want 5m", armed)
	}
	if st := ks.Stats(); st.ConsecutiveFailures != 0 || st.Updates != 2 {
		t.Errorf("stats after recovery = %+v", st)
	}
	mustVerify(t, v, token, "the key after recovery")
}

// TestNewRemoteKeySetFirstFetchFails: with no set known yet, a failed first
// fetch is the caller's error, and no refresher is left behind.
func TestNewRemoteKeySetFirstFetchFails(t *testing.T) {
	closed := httptest.NewServer(http.NotFoundHandler())
	unreachable := closed.URL + "/.well-known/jwks.json"
	closed.Close()
	tests := []struct {
		name   string
		url    string
		broken http.HandlerFunc
	}{
		{"Unreachable", unreachable, nil},
		{"ServerError", "", answer(http.StatusInternalServerError, "", "")},
		{"NotJSON", "", answer(http.StatusOK, "application/json", "<keys/>")},
		{"EmptySet", "", answer(http.StatusOK, "application/json", `{"keys":[]}`)},
		{"HTML", "", answer(http.StatusOK, "text/html", `{"keys":[]}`)},
		{"NotModified", "", answer(http.StatusNotModified, "", "")},
		{"HangUp", "", hangUp},
	}
	before := refreshers()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newJWKSServer(t, map[string]jwsKey{"ed": newEdDSAKey(t)})
			s.breakWith(tt.broken)
			u := tt.url
			if u == "" {
				u = s.URL()
			}
			clock := newFakeClock()
			ks, err := tokens.NewRemoteKeySet(context.Background(), u, tokens.RemoteOptions{
				Now: clock.Now, After: clock.After, Logger: slog.New(slog.DiscardHandler),
			})
			if err == nil {
				ks.Close()
				t.Fatal("NewRemoteKeySet succeeded, want an error")
			}
		})
	}
	waitRefreshers(t, before)
}

// TestNewRemoteKeySetRefusesURL: the keys decide which tokens are
// accepted, so they come over https, or plain http only from loopback or
// when allowed.
func TestNewRemoteKeySetRefusesURL(t *testing.T) {
	for _, u := range []string{
		"http://jwks.example.com/.well-known/jwks.json",
		"http://192.0.2.1/.well-known/jwks.json",
		"ftp://localhost/.well-known/jwks.json",
		"file:///etc/jwks.json",
		"https:///.well-known/jwks.json",
		"/.well-known/jwks.json",
		"://jwks",
	} {
		t.Run(u, func(t *testing.T) {
			if ks, err := tokens.NewRemoteKeySet(context.Background(), u, tokens.RemoteOptions{}); err == nil {
				ks.Close()
				t.Fatal("NewRemoteKeySet succeeded, want an error")
			}
		})
	}
	t.Run("LocalhostHTTP", func(t *testing.T) {
		s := newJWKSServer(t, map[string]jwsKey{"ed": newEdDSAKey(t)})
		u := strings.Replace(s.URL(), "127.0.0.1", "localhost", 1)
		ks, err := tokens.NewRemoteKeySet(context.Background(), u, tokens.RemoteOptions{Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ks.Close()
	})
	t.Run("AllowHTTP", func(t *testing.T) {
		// A name that is not loopback, dialled to the test server.
		s := newJWKSServer(t, map[string]jwsKey{"ed": newEdDSAKey(t)})
		client := &http.Client{Transport: &http.Transport{
			DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
				return (&net.Dialer{}).DialContext(ctx, network, s.srv.Listener.Addr().String())
			},
		}}
		u := "http://jwks.internal/.well-known/jwks.json"
		if _, err := tokens.NewRemoteKeySet(context.Background(), u, tokens.RemoteOptions{Client: client}); err == nil {
			t.Fatal("plain http to a name that is not loopback was allowed without AllowHTTP")
		}
		ks, err := tokens.NewRemoteKeySet(context.Background(), u, tokens.RemoteOptions{Client: client, AllowHTTP: true, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			t.Fatal(err)
		}
		ks.Close()
	})
}

func TestRemoteOptionsValidate(t *testing.T) {
	tests := []struct {
		name    string
		opts    tokens.RemoteOptions
		wantErr bool
	}{
		{"Defaults", tokens.RemoteOptions{}, false},
		{"UnknownKidIntervalTooShort", tokens.RemoteOptions{RefreshUnknownKidInterval: time.Millisecond}, true},
		{"UnknownKidIntervalNegative", tokens.RemoteOptions{RefreshUnknownKidInterval: -time.Second}, true},
		{"FloorAboveDefaultCeiling", tokens.RemoteOptions{MinRefresh: 2 * time.Hour}, false},
		{"BoundsInverted", tokens.RemoteOptions{MinRefresh: 2 * time.Hour, MaxRefresh: time.Hour}, true},
		{"MinRefreshNegative", tokens.RemoteOptions{MinRefresh: -time.Second}, true},
		{"TimeoutNegative", tokens.RemoteOptions{Timeout: -time.Second}, true},
		{"SizeNegative", tokens.RemoteOptions{MaxResponseSize: -1}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.opts.Validate(); (err != nil) != tt.wantErr {
				t.Errorf("Validate = %v, want error %v", err, tt.wantErr)
			}
			if tt.wantErr {
				if _, err := tokens.NewRemoteKeySet(context.Background(), "https://jwks.example.com/.well-known/jwks.json", tt.opts); err == nil {
					t.Error("NewRemoteKeySet accepted the options")
				}
			}
		})
	}
}

func TestNewRemoteVerifierRejectsOptions(t *testing.T) {
	s := newJWKSServer(t, map[string]jwsKey{"ed": newEdDSAKey(t)})
	ks := newRemoteKeySet(t, s, newFakeClock(), tokens.RemoteOptions{})
	tests := []struct {
		name string
		keys *tokens.RemoteKeySet
		opts tokens.VerifyOptions
	}{
		{"NoKeys", nil, tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api"}},
		{"NoIssuer", ks, tokens.VerifyOptions{Audience: "api"}},
		{"NoAudience", ks, tokens.VerifyOptions{Issuer: "https://auth.example.com"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tokens.NewRemoteVerifier(tt.keys, tt.opts); err == nil {
				t.Error("NewRemoteVerifier succeeded, want an error")
			}
		})
	}
}

// refreshers counts the goroutines running a RemoteKeySet's refresher.
func refreshers() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			return strings.Count(string(buf[:n]), "tokens.(*RemoteKeySet).run(")
		}
		buf = make([]byte, 2*len(buf))
	}
}

// waitRefreshers waits until want refreshers are left: a goroutine that has
// closed its done channel may take a moment more to be gone from the stack.
func waitRefreshers(t *testing.T, want int) {
	t.Helper()
	waitFor(t, fmt.Sprintf("%d refreshers to be left", want), func() bool { return refreshers() == want })
}

// TestRemoteKeySetStops: Close, or the end of the context, stops the
// refresher, even while a fetch is held up; the set then keeps its keys but
// fetches no more.
func TestRemoteKeySetStops(t *testing.T) {
	for _, how := range []string{"Close", "CloseTwice", "ContextEnds", "CloseDuringFetch"} {
		t.Run(how, func(t *testing.T) {
			// Sets closed by earlier tests may still be unwinding; count
			// from none, so this test sees only its own refresher.
			const before = 0
			waitRefreshers(t, before)
			ours := newEdDSAKey(t)
			s := newJWKSServer(t, map[string]jwsKey{"ed": ours})
			clock := newFakeClock()
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			ks, err := tokens.NewRemoteKeySet(ctx, s.URL(), tokens.RemoteOptions{
				Now: clock.Now, After: clock.After, Logger: slog.New(slog.DiscardHandler),
			})
			if err != nil {
				t.Fatal(err)
			}
			defer ks.Close()
			v := remoteVerifier(t, ks)
			unknown := signed(t, newEdDSAKey(t), "unknown")
			clock.nextArm(t)
			if got := refreshers(); got != before+1 {
				t.Fatalf("%d refreshers running, want %d", got, before+1)
			}
			switch how {
			case "Close":
				ks.Close()
			case "CloseTwice":
				ks.Close()
				ks.Close()
			case "ContextEnds":
				cancel()
			case "CloseDuringFetch":
				s.hold()
				done := make(chan struct{})
				go func() {
					defer close(done)
					v.Verify(unknown)
				}()
				s.waitRequests(t, 2)
				ks.Close() // must not wait for the held answer
				<-done
			}
			waitRefreshers(t, before)

			requests := s.count()
			mustVerify(t, v, signed(t, ours, "ed"), "the known key after the set stopped")
			mustReject(t, v, unknown, "an unknown kid after the set stopped")
			if err := ks.Refresh(); err == nil {
				t.Error("Refresh after the set stopped succeeded")
			}
			clock.Advance(24 * time.Hour)
			if got := s.count(); got != requests {
				t.Errorf("the stopped set made %d more requests", got-requests)
			}
		})
	}
}

// BenchmarkVerify compares Verify through a remote set, from its cache,
// with Verify through a static KeySet, for each algorithm; and what a
// token with a forged kid costs each once the remote set has spent its
// unknown-kid fetch for the interval.
func BenchmarkVerify(b *testing.B) {
	for _, a := range algorithms {
		k := a.key(b)
		keys := map[string]jwsKey{"k": k}
		opts := tokens.VerifyOptions{Issuer: "https://auth.example.com", Audience: "api", Now: func() time.Time { return tokenNow }}
		static, err := tokens.NewVerifier(jwksOf(b, keys), opts)
		if err != nil {
			b.Fatal(err)
		}
		s := newJWKSServer(b, keys)
		remote, err := tokens.NewRemoteVerifier(newRemoteKeySet(b, s, newFakeClock(), tokens.RemoteOptions{}), opts)
		if err != nil {
			b.Fatal(err)
		}
		forged := signed(b, a.key(b), "forged")
		remote.Verify(forged) // spends the interval's fetch
		for _, tok := range []struct {
			name  string
			token string
			ok    bool
		}{{"", signed(b, k, "k"), true}, {"ForgedKid/", forged, false}} {
			for _, src := range []struct {
				name string
				v    *tokens.Verifier
			}{{"Static", static}, {"Remote", remote}} {
				b.Run(a.alg+"/"+tok.name+src.name, func(b *testing.B) {
					b.ReportAllocs()
					for b.Loop() {
						if _, err := src.v.Verify(tok.token); (err == nil) != tok.ok {
							b.Fatalf("Verify = %v", err)
						}
					}
				})
			}
		}
		if n := s.count(); n != 2 {
			b.Errorf("the remote set fetched %d times, want twice: first, and for the first forged kid", n)
		}
	}
}
