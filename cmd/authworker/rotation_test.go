package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/testenv"
	"github.com/authworker/authworker/tokens"
)

// A rotation policy short enough to watch two rotations in a test, and
// one the configuration accepts: the period is over twice the
// pre-publication, which is over the JWKS max-age plus the reload
// interval. A key signs for 6 s; its successor is created 5 s before that
// end (twice the pre-publication) and published from then on.
const (
	rotPeriod     = 6 * time.Second
	rotPrePublish = 2500 * time.Millisecond
	rotReload     = time.Second
	rotMaxAge     = time.Second
	rotAccessTTL  = 4 * time.Second
)

func rotationEnv(addr, issuer string) []string {
	return []string{
		"AUTH_KEY_ROTATION_PERIOD=" + rotPeriod.String(),
		"AUTH_KEY_PREPUBLISH=" + rotPrePublish.String(),
		"AUTH_KEY_RELOAD_INTERVAL=" + rotReload.String(),
		"AUTH_JWKS_MAX_AGE=" + rotMaxAge.String(),
		"AUTH_ACCESS_TOKEN_TTL=" + rotAccessTTL.String(),
		"HTTP_ADDR=" + addr,
		"AUTH_ISSUER=" + issuer,
	}
}

// issuedToken is an access token a worker issued under load, and when:
// it was signed between sent and recv, by the test's clock, which is the
// workers' own.
type issuedToken struct {
	worker     string
	token      string
	kid        string
	sent, recv time.Time
	iat, exp   time.Time
}

// peekToken reads a token's kid, iat and exp without verifying it.
func peekToken(t testing.TB, token string) (kid string, iat, exp time.Time) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("access token has %d segments", len(parts))
	}
	var h struct {
		Kid string `json:"kid"`
	}
	var c struct {
		Iat int64 `json:"iat"`
		Exp int64 `json:"exp"`
	}
	for i, dst := range []any{&h, &c} {
		raw, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err == nil {
			err = json.Unmarshal(raw, dst)
		}
		if err != nil {
			t.Fatalf("access token segment %d: %v", i, err)
		}
	}
	return h.Kid, time.Unix(c.Iat, 0), time.Unix(c.Exp, 0)
}

// rotationRig is two workers on one database, with a short rotation
// policy, and two remote key sets as a service would hold them: one found
// through worker A's discovery document, one at worker B's JWKS URL.
type rotationRig struct {
	a, b   *worker
	issuer string
	viaA   *tokens.RemoteKeySet // through A's discovery
	viaB   *tokens.RemoteKeySet // B's JWKS URL
}

func newRotationRig(t *testing.T, extraEnv ...string) *rotationRig {
	t.Helper()
	addrA, addrB := freeAddr(t), freeAddr(t)
	issuer := "http://" + addrA // both workers are one issuer, as behind a load balancer
	a := startWorker(t, append(rotationEnv(addrA, issuer), extraEnv...)...)
	b := startWorker(t, append(append(rotationEnv(addrB, issuer), extraEnv...),
		"DATABASE_URL="+a.cfg.Postgres.URL, "AUTH_EVENTS_TOPIC="+a.cfg.App.EventsTopic)...)
	r := &rotationRig{a: a, b: b, issuer: issuer}

	meta := httpGet(t, issuer+"/.well-known/openid-configuration", "")
	var doc struct {
		Issuer  string `json:"issuer"`
		JWKSURI string `json:"jwks_uri"`
	}
	if err := json.Unmarshal([]byte(meta.body), &doc); err != nil || doc.Issuer != issuer {
		t.Fatalf("discovery at %s: %d %s", issuer, meta.code, meta.body)
	}
	// Refresh as often as the JWKS's max-age allows, and never for an
	// unknown kid after the first: a scheduled rotation must need no such
	// fetch, since each key is published longer before it signs than a
	// verifier may cache the set.
	opts := tokens.RemoteOptions{
		MinRefresh:                rotMaxAge,
		RefreshUnknownKidInterval: time.Hour,
		Logger:                    slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	var err error
	if r.viaA, err = tokens.NewRemoteKeySet(ctx, doc.JWKSURI, opts); err != nil {
		t.Fatal(err)
	}
	if r.viaB, err = tokens.NewRemoteKeySet(ctx, "http://"+addrB+"/.well-known/jwks.json", opts); err != nil {
		t.Fatal(err)
	}
	return r
}

// verifier verifies through keys with the clock at; a zero at is the
// real clock.
func (r *rotationRig) verifier(t testing.TB, keys *tokens.RemoteKeySet, at time.Time) *tokens.Verifier {
	t.Helper()
	opts := tokens.VerifyOptions{Issuer: r.issuer, Audience: "api"}
	if !at.IsZero() {
		opts.Now = func() time.Time { return at }
	}
	v, err := tokens.NewRemoteVerifier(keys, opts)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// keySets are the rig's remote key sets, by name.
func (r *rotationRig) keySets() map[string]*tokens.RemoteKeySet {
	return map[string]*tokens.RemoteKeySet{"discovery(A)": r.viaA, "jwks(B)": r.viaB}
}

// complaints reports at most a few failures of a kind through t, and
// counts them all: a broken invariant under load fails thousands of
// checks at once.
type complaints struct {
	t testing.TB
	n atomic.Int64
}

func (c *complaints) Errorf(format string, args ...any) {
	c.t.Helper()
	if c.n.Add(1) <= 10 {
		c.t.Errorf(format, args...)
	}
}

// TestRotationUnderLoad: two workers on one database rotate their
// signing key twice by policy while both issue access tokens under
// bounded concurrent load. Every token is verified as a service would,
// through remote key sets that follow the rotations: on receipt, again
// just before it expires, and after it: it verifies until its expiry and
// never after. The workers sign with the same key at every moment, but
// within the reload interval; the JWKS never shows a private member or a
// kid twice; each new key is announced on the events topic. Then an
// operator's emergency rotation, run against the same database: both
// workers sign with the new key within the reload interval (they are
// notified), and the tokens of the keys it removed are refused before
// they expire.
func TestRotationUnderLoad(t *testing.T) {
	r := newRotationRig(t)
	probs := &complaints{t: t}
	watch := watchJWKS(t, probs, r.a, r.b)

	tokensIssued, checks := r.loadThroughRotations(t, probs)
	before := len(tokensIssued)
	emergency := r.emergencyRotation(t, probs, watch)
	watch.stop()

	kidsByTime := r.checkAnnouncements(t, append(slices.Clone(tokensIssued), emergency.tokens...), watch, emergency)
	sw := checkSwitches(t, tokensIssued, kidsByTime)
	// From the workers' sets: each worker had each key before it began to
	// sign, or at most the reload interval after.
	lead, ok := watch.minLead(kidsByTime, watch.started)
	if !ok {
		t.Error("no key began to sign by policy while the workers' sets were watched")
	} else if -lead > rotReload {
		t.Errorf("a worker loaded a key %v after it began to sign, want at most the reload interval %v", -lead, rotReload)
	}

	signing := map[string]bool{}
	for _, tok := range tokensIssued {
		signing[tok.kid] = true
	}
	if len(signing) < 3 {
		t.Errorf("the load saw %d signing keys, want at least 3: two rotations", len(signing))
	}
	if probs.n.Load() > 0 {
		t.Errorf("%d checks failed in all (the first ones are above)", probs.n.Load())
	}
	t.Logf("rotation under load: %d tokens from 2 workers, signed by %d keys by policy (%d more tokens by the emergency rotation's key); %d keys published in all; "+
		"every one verified on receipt through 2 remote key sets (none needed an unknown-kid fetch), %d again in the last 600 ms of their life (%d missed that window), "+
		"%d refused after expiry and verified a millisecond before it; "+
		"switch overlap between the workers: proven by the tokens %v, at most %v with the requests' round trips (design bound %v); "+
		"latest request answered by a retired key %v after its successor's start; least lead of a key loaded by a worker before it signed %v; "+
		"JWKS fetched %d times over HTTP, %d distinct sets",
		before, len(signing), len(emergency.tokens), len(kidsByTime),
		checks.late.Load(), checks.missed.Load(), checks.expired.Load(),
		sw.proven, sw.bound, rotReload, sw.lateness, lead, watch.fetches.Load(), watch.distinctSets())
	t.Logf("emergency rotation (its call took %v): worker A signs with the new key %v after the call began, worker B %v (design bound %v: NOTIFY, else the reload)",
		emergency.done.Sub(emergency.began), emergency.propagation["A"], emergency.propagation["B"], rotReload)
}

// expiryChecks counts the checks of tokens late in their life.
type expiryChecks struct {
	late, missed, expired atomic.Int64
}

// loadThroughRotations runs bounded load on both workers until each has
// signed with three keys, the third for a second: two rotations. Every
// token is verified on receipt through both remote key sets, again in the
// last 600 ms before it expires, and after its expiry, when it must be
// refused, and only for its expiry: with the clock set back a
// millisecond before it, the same key sets verify it. It returns once
// every token has expired.
func (r *rotationRig) loadThroughRotations(t *testing.T, probs *complaints) ([]issuedToken, *expiryChecks) {
	t.Helper()
	const (
		loopsPerWorker = 3
		maxPerLoop     = 1500 // bounds the count whatever the machine's speed
		pause          = 10 * time.Millisecond
		loginEvery     = 25 // a new session now and then, not only refreshes
	)
	var (
		mu     sync.Mutex
		issued []issuedToken
		first  = map[string]map[string]time.Time{"A": {}, "B": {}} // worker → kid → first token
	)
	checks := &expiryChecks{}
	pending := make(chan issuedToken, 1024)
	checkerDone := make(chan struct{})
	go func() {
		defer close(checkerDone)
		r.checkExpiries(t, probs, pending, checks)
	}()

	viaA := r.verifier(t, r.viaA, time.Time{})
	viaB := r.verifier(t, r.viaB, time.Time{})
	record := func(worker, token string, sent, recv time.Time) {
		kid, iat, exp := peekToken(t, token)
		tok := issuedToken{worker: worker, token: token, kid: kid, sent: sent, recv: recv, iat: iat, exp: exp}
		for name, v := range map[string]*tokens.Verifier{"discovery(A)": viaA, "jwks(B)": viaB} {
			if _, err := v.Verify(token); err != nil {
				probs.Errorf("token of worker %s, kid %s, on receipt through %s: %v", worker, kid, name, err)
			}
		}
		mu.Lock()
		issued = append(issued, tok)
		if _, ok := first[worker][kid]; !ok {
			first[worker][kid] = recv
		}
		mu.Unlock()
		pending <- tok
	}

	ctx, stop := context.WithCancel(context.Background())
	defer stop()
	var wg sync.WaitGroup
	for name, w := range map[string]*worker{"A": r.a, "B": r.b} {
		c := w.client(t)
		for range loopsPerWorker {
			wg.Go(func() {
				email := testenv.Unique("rot") + "@example.com"
				if _, err := c.Register(ctx, email, password); err != nil {
					probs.Errorf("register through worker %s: %v", name, err)
					return
				}
				var refresh string
				for i := 0; i < maxPerLoop && ctx.Err() == nil; i++ {
					sent := time.Now()
					var res *client.LoginResult
					var err error
					if i%loginEvery == 0 {
						res, err = c.Login(ctx, email, password)
					} else {
						res, err = c.Refresh(ctx, refresh)
					}
					recv := time.Now()
					if err != nil {
						if ctx.Err() == nil {
							probs.Errorf("request %d through worker %s: %v", i, name, err)
						}
						return
					}
					refresh = res.RefreshToken
					record(name, res.AccessToken, sent, recv)
					select {
					case <-ctx.Done():
					case <-time.After(pause):
					}
				}
			})
		}
	}

	// Two rotations: each worker has signed with three keys, the third
	// for a second.
	deadline := time.Now().Add(3*rotPeriod + 30*time.Second)
	for {
		mu.Lock()
		done := true
		for _, kids := range first {
			times := slices.Collect(maps.Values(kids))
			slices.SortFunc(times, time.Time.Compare)
			done = done && len(times) >= 3 && time.Since(times[2]) > time.Second
		}
		mu.Unlock()
		if done {
			break
		}
		if time.Now().After(deadline) || t.Failed() {
			stop()
			wg.Wait()
			t.Fatalf("the workers did not sign with three keys each in time: %v", first)
		}
		time.Sleep(100 * time.Millisecond)
	}
	stop()
	wg.Wait()
	close(pending)
	<-checkerDone

	mu.Lock()
	defer mu.Unlock()
	for name, ks := range r.keySets() {
		if s := ks.Stats(); s.UnknownKidRefreshes != 0 {
			t.Errorf("%s fetched the JWKS %d times for an unknown kid during scheduled rotations: a token came before its key was published for long enough", name, s.UnknownKidRefreshes)
		}
	}
	return issued, checks
}

// checkExpiries checks each token from pending in the last 600 ms of its
// life (it verifies) and after its expiry (refused, for that reason
// only), and returns when pending is closed and every token has expired.
func (r *rotationRig) checkExpiries(t *testing.T, probs *complaints, pending <-chan issuedToken, checks *expiryChecks) {
	type entry struct {
		issuedToken
		lateDone bool
	}
	var live []*entry
	sets := r.keySets()
	realClock := map[string]*tokens.Verifier{}
	for name, ks := range sets {
		realClock[name] = r.verifier(t, ks, time.Time{})
	}
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	open := true
	for open || len(live) > 0 {
		select {
		case tok, ok := <-pending:
			if !ok {
				open, pending = false, nil
				continue
			}
			live = append(live, &entry{issuedToken: tok})
			continue
		case <-tick.C:
		}
		now := time.Now()
		kept := live[:0]
		for _, e := range live {
			if !e.lateDone && !now.Before(e.exp.Add(-600*time.Millisecond)) {
				e.lateDone = true
				// The clock is read once, here, and given to the verifiers:
				// under load the checks of one tick take a while.
				if at := time.Now(); at.Before(e.exp.Add(-50 * time.Millisecond)) {
					for name, ks := range sets {
						if _, err := r.verifier(t, ks, at).Verify(e.token); err != nil {
							probs.Errorf("token of worker %s, kid %s, %v before its expiry, through %s: %v", e.worker, e.kid, e.exp.Sub(at), name, err)
						}
					}
					checks.late.Add(1)
				} else {
					checks.missed.Add(1) // the checker was late: the check below still holds
				}
			}
			if now.Before(e.exp) {
				kept = append(kept, e)
				continue
			}
			for name, v := range realClock {
				if _, err := v.Verify(e.token); err == nil {
					probs.Errorf("token of worker %s, kid %s, verified through %s %v after its expiry", e.worker, e.kid, name, time.Since(e.exp))
				}
				// Refused for its expiry only: its key is still there.
				if _, err := r.verifier(t, sets[name], e.exp.Add(-time.Millisecond)).Verify(e.token); err != nil {
					probs.Errorf("token of worker %s, kid %s, a millisecond before its expiry, through %s: %v", e.worker, e.kid, name, err)
				}
			}
			checks.expired.Add(1)
		}
		live = kept
	}
}

// jwksWatch follows the workers' key sets: in process every few
// milliseconds, to time when each worker loaded and dropped each key, and
// over HTTP every 100 ms, as verifiers see them.
type jwksWatch struct {
	started time.Time
	fetches atomic.Int64

	mu     sync.Mutex
	loaded map[string]map[string]time.Time // worker → kid → first seen in its set
	gone   map[string]map[string]time.Time // worker → kid → first seen missing after
	sets   map[string]bool                 // distinct JWKS bodies served

	cancel context.CancelFunc
	done   chan struct{}
}

// privateMembers are the JWK members of private keys (RFC 7518 §6) and
// of symmetric ones: a JWKS must hold none.
var privateMembers = []string{"d", "p", "q", "dp", "dq", "qi", "k", "oth"}

func watchJWKS(t *testing.T, probs *complaints, a, b *worker) *jwksWatch {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &jwksWatch{
		started: time.Now(),
		loaded:  map[string]map[string]time.Time{"A": {}, "B": {}},
		gone:    map[string]map[string]time.Time{"A": {}, "B": {}},
		sets:    map[string]bool{},
		cancel:  cancel,
		done:    make(chan struct{}),
	}
	workers := map[string]*worker{"A": a, "B": b}
	go func() {
		defer close(w.done)
		lastHTTP := time.Time{}
		for ctx.Err() == nil {
			now := time.Now()
			for name, wk := range workers {
				w.observe(name, kidsOf(probs, wk.main.issuer.JWKS()), now)
			}
			if now.Sub(lastHTTP) >= 100*time.Millisecond {
				lastHTTP = now
				for name, wk := range workers {
					w.fetch(probs, name, "http://"+wk.main.http.Addr()+"/.well-known/jwks.json")
				}
			}
			time.Sleep(2 * time.Millisecond)
		}
	}()
	t.Cleanup(w.stop)
	return w
}

func (w *jwksWatch) stop() {
	w.cancel()
	<-w.done
}

func (w *jwksWatch) observe(worker string, kids []string, at time.Time) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, kid := range kids {
		if _, ok := w.loaded[worker][kid]; !ok {
			w.loaded[worker][kid] = at
		}
	}
	for kid := range w.loaded[worker] {
		if _, ok := w.gone[worker][kid]; !ok && !slices.Contains(kids, kid) {
			w.gone[worker][kid] = at
		}
	}
}

// fetch gets a worker's JWKS as a verifier would, and checks it: public
// members only, each kid once, the max-age of the settings.
func (w *jwksWatch) fetch(probs *complaints, worker, url string) {
	res, err := http.Get(url)
	if err != nil {
		probs.Errorf("GET %s: %v", url, err)
		return
	}
	defer res.Body.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil || res.StatusCode != http.StatusOK {
		probs.Errorf("GET %s: %d, %v", url, res.StatusCode, err)
		return
	}
	w.fetches.Add(1)
	if got, want := res.Header.Get("Cache-Control"), fmt.Sprintf("max-age=%d", int(rotMaxAge.Seconds())); !strings.Contains(got, want) {
		probs.Errorf("JWKS of worker %s: Cache-Control %q, want %s", worker, got, want)
	}
	var set struct {
		Keys []map[string]json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(buf.Bytes(), &set); err != nil {
		probs.Errorf("JWKS of worker %s: %v", worker, err)
		return
	}
	seen := map[string]bool{}
	for _, k := range set.Keys {
		for _, m := range privateMembers {
			if _, ok := k[m]; ok {
				probs.Errorf("JWKS of worker %s has a key with the private member %q", worker, m)
			}
		}
		var kid string
		if err := json.Unmarshal(k["kid"], &kid); err != nil || kid == "" {
			probs.Errorf("JWKS of worker %s has a key without a kid", worker)
		}
		if seen[kid] {
			probs.Errorf("JWKS of worker %s has kid %s twice", worker, kid)
		}
		seen[kid] = true
	}
	w.mu.Lock()
	w.sets[buf.String()] = true
	w.mu.Unlock()
}

func (w *jwksWatch) distinctSets() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.sets)
}

// loadedAt returns when worker first had kid in its set.
func (w *jwksWatch) loadedAt(worker, kid string) (time.Time, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	at, ok := w.loaded[worker][kid]
	return at, ok
}

// minLead returns the least time by which a worker had a key in its set
// before the key began to sign, over the keys that began after since
// (the scheduled ones): a positive lead means both workers switched at the
// key's start, each by the schedule it had loaded.
func (w *jwksWatch) minLead(schedule []scheduledKey, since time.Time) (lead time.Duration, ok bool) {
	for _, k := range schedule {
		if k.emergency || !k.signsFrom.After(since) {
			continue
		}
		for _, worker := range []string{"A", "B"} {
			if at, loaded := w.loadedAt(worker, k.kid); loaded {
				if d := k.signsFrom.Sub(at); !ok || d < lead {
					lead, ok = d, true
				}
			}
		}
	}
	return lead, ok
}

func kidsOf(probs *complaints, jwks []byte) []string {
	var set tokens.JWKS
	if err := json.Unmarshal(jwks, &set); err != nil {
		probs.Errorf("a worker's JWKS: %v", err)
		return nil
	}
	kids := make([]string, len(set.Keys))
	for i, k := range set.Keys {
		kids[i] = k.Kid
	}
	return kids
}

// emergencyResult is what the emergency rotation showed.
type emergencyResult struct {
	kid         string
	began, done time.Time // the rotation's call
	propagation map[string]time.Duration
	tokens      []issuedToken // of the new key
}

// emergencyRotation rotates the keys at once as an operator would, with a
// manager of its own on the workers' database and key-encryption key:
// both workers sign with the new key within the reload interval, and the
// tokens of the keys it removed are refused, still unexpired, through
// both remote key sets.
func (r *rotationRig) emergencyRotation(t *testing.T, probs *complaints, watch *jwksWatch) emergencyResult {
	t.Helper()
	ctx := context.Background()
	clients := map[string]*client.Client{"A": r.a.client(t), "B": r.b.client(t)}
	old := map[string]*client.LoginResult{}
	for name, c := range clients {
		_, old[name] = newAccount(t, c)
	}

	mgr := r.operatorManager(t)
	res := emergencyResult{began: time.Now(), propagation: map[string]time.Duration{}}
	created, err := mgr.Rotate(ctx, tokens.Emergency)
	res.done = time.Now()
	if err != nil || len(created) != 1 {
		t.Fatalf("emergency rotation: %v, %v; want one new key", created, err)
	}
	res.kid = created[0].ID

	for name := range clients {
		waitFor(t, "worker "+name+" to load the emergency key", func() bool {
			_, ok := watch.loadedAt(name, res.kid)
			return ok
		})
		at, _ := watch.loadedAt(name, res.kid)
		res.propagation[name] = at.Sub(res.began)
		if res.propagation[name] > rotReload {
			t.Errorf("worker %s signed with the emergency key %v after the rotation began, want within the reload interval %v", name, res.propagation[name], rotReload)
		}
	}
	for name, c := range clients {
		sent := time.Now()
		next, err := c.Refresh(ctx, old[name].RefreshToken)
		if err != nil {
			t.Fatalf("refresh through worker %s after the emergency rotation: %v", name, err)
		}
		kid, iat, exp := peekToken(t, next.AccessToken)
		if kid != res.kid {
			t.Errorf("worker %s signs with %s after the emergency rotation, want %s", name, kid, res.kid)
		}
		res.tokens = append(res.tokens, issuedToken{worker: name, token: next.AccessToken, kid: kid, sent: sent, recv: time.Now(), iat: iat, exp: exp})
	}

	// The removed keys' tokens are refused, at the clock of their issue
	// (so for their key, not their age) and at the real one. The key set
	// found through discovery is refreshed as an operator's runbook says;
	// the other follows by itself, within the JWKS's max-age.
	if err := r.viaA.Refresh(); err != nil {
		t.Fatal(err)
	}
	for name, s := range old {
		_, iat, exp := peekToken(t, s.AccessToken)
		if !time.Now().Before(exp) {
			t.Logf("the token issued by worker %s before the emergency rotation expired before it could be checked", name)
		}
		for setName, ks := range r.keySets() {
			waitFor(t, "the token of a removed key to be refused through "+setName, func() bool {
				_, err := r.verifier(t, ks, iat).Verify(s.AccessToken)
				return err != nil
			})
			if _, err := r.verifier(t, ks, time.Time{}).Verify(s.AccessToken); err == nil {
				t.Errorf("the token of a removed key, issued by worker %s, verifies through %s", name, setName)
			}
		}
	}
	for _, tok := range res.tokens {
		for setName, ks := range r.keySets() {
			if _, err := r.verifier(t, ks, time.Time{}).Verify(tok.token); err != nil {
				probs.Errorf("the emergency key's token of worker %s through %s: %v", tok.worker, setName, err)
			}
			if _, err := r.verifier(t, ks, time.Time{}).Verify(tamper(tok.token)); err == nil {
				t.Errorf("a tampered token verifies through %s", setName)
			}
		}
	}
	return res
}

// tamper changes one claim of token and keeps its signature.
func tamper(token string) string {
	parts := strings.Split(token, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = bytes.Replace(payload, []byte(`"client_id":"`), []byte(`"client_id":"x`), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(payload)
	return strings.Join(parts, ".")
}

// operatorManager is a key manager of the workers' store, as `authctl
// keys` builds one: same database, key-encryption key and policy, and
// the new keys announced on the events topic.
func (r *rotationRig) operatorManager(t *testing.T) *tokens.Manager {
	t.Helper()
	ctx := context.Background()
	db, err := postgres.Open(ctx, r.a.cfg.Postgres)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewBox(r.a.cfg.Tokens.KeyEncryptionKey, "outbox")
	if err != nil {
		t.Fatal(err)
	}
	events, err := app.NewKeyEvents(codec, postgres.NewOutbox(db, sealer), newID, r.a.cfg.App)
	if err != nil {
		t.Fatal(err)
	}
	cfg := r.a.cfg.Tokens
	cfg.OnKeyCreated = events.KeyCreated
	mgr, err := tokens.NewManager(postgres.NewSigningKeyRepository(db), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return mgr
}

// scheduledKey is a key as its SigningKeyRotated event announced it.
type scheduledKey struct {
	kid       string
	signsFrom time.Time
	emergency bool
}

// checkAnnouncements reads the events topic until a SigningKeyRotated
// event has come for every key that signed a token or was published, and
// returns the keys in the order they began to sign. Each event names its
// key's algorithm and start; a token is never signed by a key before that
// start.
func (r *rotationRig) checkAnnouncements(t *testing.T, issued []issuedToken, watch *jwksWatch, em emergencyResult) []scheduledKey {
	t.Helper()
	want := map[string]bool{}
	for _, tok := range issued {
		want[tok.kid] = true
	}
	watch.mu.Lock()
	for _, kids := range watch.loaded {
		for kid := range kids {
			want[kid] = true
		}
	}
	watch.mu.Unlock()
	if len(want) < 4 {
		t.Errorf("%d distinct kids, want at least 3 by policy and 1 by the emergency rotation", len(want))
	}

	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]scheduledKey{}
	consumeOne(t, r.a.cfg.Kafka.BootstrapServers, r.a.cfg.App.EventsTopic, func(m *kafka.Message) bool {
		if string(headerValue(m, "ce_type")) != "authworker.SigningKeyRotated" {
			return false
		}
		ev, err := codec.DecodeEvent(context.Background(), m.Value)
		if err != nil {
			t.Fatal(err)
		}
		p := ev.Payload.(*schemas.SigningKeyRotated)
		if p.Algorithm != tokens.DefaultAlgorithm || ev.UserID != nil {
			t.Errorf("SigningKeyRotated %+v for user %v, want %s and no user", p, ev.UserID, tokens.DefaultAlgorithm)
		}
		if _, dup := got[p.Kid]; !dup {
			got[p.Kid] = scheduledKey{kid: p.Kid, signsFrom: p.SignsFrom, emergency: p.Kid == em.kid}
		}
		for kid := range want {
			if _, ok := got[kid]; !ok {
				return false
			}
		}
		return true
	})
	if k := got[em.kid]; k.signsFrom.Before(em.began.Truncate(time.Millisecond)) || k.signsFrom.After(em.done) {
		t.Errorf("the emergency key signs from %v, want within its rotation's call [%v, %v]", k.signsFrom, em.began, em.done)
	}
	schedule := slices.Collect(maps.Values(got))
	sort.Slice(schedule, func(i, j int) bool { return schedule[i].signsFrom.Before(schedule[j].signsFrom) })
	starts := map[string]time.Time{}
	for _, k := range schedule {
		starts[k.kid] = k.signsFrom
	}
	for _, tok := range issued {
		if tok.recv.Before(starts[tok.kid]) {
			t.Errorf("worker %s signed with %s before its start %v (the reply came at %v)", tok.worker, tok.kid, starts[tok.kid], tok.recv)
		}
	}
	return schedule
}

// switches are the figures of the workers' switches from one key to the
// next by policy, from the tokens they issued.
type switches struct {
	// proven is the longest time in which one worker certainly signed
	// with the new key while the other still signed with the old: from the
	// reply that brought a new kid from one to the request, sent later,
	// that got the old kid from the other.
	proven time.Duration
	// bound is the longest time in which they may have: from the first
	// request that got the new kid from either to the last reply that
	// carried the old. It includes the round trips of those requests.
	bound time.Duration
	// lateness is how long after the new key's start a request was sent
	// that the old key answered: how late a worker certainly was.
	lateness time.Duration
}

// checkSwitches checks, for each key that took over from another by
// policy, that the tokens show the workers switching together: neither
// was certainly still signing with the old key, while the other had the
// new one or after the new key's start, for longer than the reload
// interval.
func checkSwitches(t *testing.T, issued []issuedToken, schedule []scheduledKey) switches {
	t.Helper()
	var s switches
	for i := 1; i < len(schedule); i++ {
		prev, next := schedule[i-1], schedule[i]
		if next.emergency {
			continue // timed by emergencyRotation
		}
		var lastOldSent, lastOldRecv, firstNewSent, firstNewRecv time.Time
		for _, tok := range issued {
			switch tok.kid {
			case prev.kid:
				if tok.sent.After(lastOldSent) {
					lastOldSent = tok.sent
				}
				if tok.recv.After(lastOldRecv) {
					lastOldRecv = tok.recv
				}
				s.lateness = max(s.lateness, tok.sent.Sub(next.signsFrom))
			case next.kid:
				if firstNewSent.IsZero() || tok.sent.Before(firstNewSent) {
					firstNewSent = tok.sent
				}
				if firstNewRecv.IsZero() || tok.recv.Before(firstNewRecv) {
					firstNewRecv = tok.recv
				}
			}
		}
		if lastOldSent.IsZero() || firstNewSent.IsZero() {
			continue // a key that took over after the load
		}
		s.proven = max(s.proven, lastOldSent.Sub(firstNewRecv))
		s.bound = max(s.bound, lastOldRecv.Sub(firstNewSent))
	}
	if s.proven > rotReload {
		t.Errorf("one worker signed with a new key while the other still signed with the old for at least %v, want at most the reload interval %v", s.proven, rotReload)
	}
	if s.lateness > rotReload {
		t.Errorf("a retired key signed a token asked for %v after its successor's start, want at most the reload interval %v", s.lateness, rotReload)
	}
	return s
}
