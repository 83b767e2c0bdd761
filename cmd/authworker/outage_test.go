package main

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/testenv"
)

// sentLogin is one login of the outage test's load: when it was sent, how
// long its reply took, and what it said.
type sentLogin struct {
	email         string
	sent, replied time.Time
	err           error
}

// queuedBehind reports whether l was sent while an earlier login of its
// account was still unanswered: requests of one account are handled one
// at a time, in order, so l waited for it.
func queuedBehind(l sentLogin, all []sentLogin) bool {
	for _, m := range all {
		if m.email == l.email && m.sent.Before(l.sent) && m.replied.After(l.sent) {
			return true
		}
	}
	return false
}

// loginLoad sends one login every interval, each in its own goroutine and
// under a request id of its own, sent once, until stop is closed.
func loginLoad(ctx context.Context, c *client.Client, emails []string, interval time.Duration, stop <-chan struct{}) []sentLogin {
	var (
		mu   sync.Mutex
		out  []sentLogin
		wg   sync.WaitGroup
		tick = time.NewTicker(interval)
	)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case <-stop:
			wg.Wait()
			return out
		case <-tick.C:
		}
		wg.Go(func() {
			sent, email := time.Now(), emails[i%len(emails)]
			_, err := c.Login(ctx, email, password, client.WithRequestID(uuid.NewString()))
			mu.Lock()
			out = append(out, sentLogin{email: email, sent: sent, replied: time.Now(), err: err})
			mu.Unlock()
		})
	}
}

// TestStoreOutageFailsFast: the worker's Redis, then in its own run its
// PostgreSQL, is stopped under a load of logins (10 a second, each sent
// once) and started again. While the store is down, logins sent a second
// after it went are answered UNAVAILABLE with a retry-after within a
// second, instead of holding a worker slot for the retry window (but for
// those sent behind a login of their account that was already in its use
// case when PostgreSQL went: that one keeps retrying its transaction, so
// as not to hash again, and its account's next requests wait for it),
// while
// introspections that do not need the store are answered; /readyz says
// 503 and /metrics shows the store down. Logins sent a second after the
// store is back succeed. Every login sent gets a reply: nothing accepted is
// lost.
func TestStoreOutageFailsFast(t *testing.T) {
	const (
		interval = 100 * time.Millisecond
		before   = 2 * time.Second // of load before the outage
		outage   = 5 * time.Second
		after    = 3 * time.Second // of load after the store is back
		settle   = time.Second     // from the store's change of state to the bound
	)
	tests := []struct {
		store string
		// introspect is the kind of token whose introspection does not
		// need the store.
		introspect string
		setup      func(t *testing.T) (env []string, stop, start func())
	}{
		{"redis", "refresh_token", func(t *testing.T) ([]string, func(), func()) {
			rs := testenv.PrivateRedis(t)
			return []string{"REDIS_URL=" + rs.URL()}, func() { rs.Stop(t) }, func() { rs.Start(t) }
		}},
		{"postgres", "access_token", func(t *testing.T) ([]string, func(), func()) {
			pg := testenv.PrivatePostgres(t)
			return []string{"DATABASE_URL=" + pg.URL()}, func() { pg.Stop(t, testenv.Fast) }, func() { pg.Start(t) }
		}},
	}
	for _, tt := range tests {
		t.Run(tt.store, func(t *testing.T) {
			env, stopStore, startStore := tt.setup(t)
			pw := newProcessWorker(t, env...)
			pw.start(t)
			waitFor(t, "the worker to be ready", func() bool { return ready(pw.httpAddr) })
			c := pw.newClient(t, 30*time.Second)
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
			defer cancel()

			emails := make([]string, 5)
			var token string
			for i := range emails {
				emails[i] = testenv.Unique(fmt.Sprintf("outage%d-", i)) + "@example.com"
				if _, err := c.Register(ctx, emails[i], password); err != nil {
					t.Fatal(err)
				}
				login, err := c.Login(ctx, emails[i], password)
				if err != nil {
					t.Fatal(err)
				}
				token = map[string]string{"refresh_token": login.RefreshToken, "access_token": login.AccessToken}[tt.introspect]
			}

			if res, err := c.Introspect(ctx, token, tt.introspect); err != nil || !res.Active {
				t.Fatalf("introspect a %s: %+v, %v; want it active", tt.introspect, res, err)
			}

			stop := make(chan struct{})
			loads := make(chan []sentLogin, 1)
			go func() { loads <- loginLoad(ctx, c, emails, interval, stop) }()
			time.Sleep(before)
			stopping := time.Now()
			stopStore()
			down := time.Now()
			time.Sleep(settle)
			waitFor(t, "/readyz 503", func() bool { return !ready(pw.httpAddr) })
			if m := httpGet(t, "http://"+pw.httpAddr+"/metrics", "").body; !strings.Contains(m, `authworker_store_down{store="`+tt.store+`"} 1`) {
				t.Errorf("/metrics does not show %s down", tt.store)
			}
			res, err := c.Introspect(ctx, token, tt.introspect)
			if err != nil || !res.Active {
				t.Errorf("introspect a %s with %s down: %+v, %v; want it active", tt.introspect, tt.store, res, err)
			}
			time.Sleep(outage - settle - time.Since(down))
			starting := time.Now()
			startStore()
			back := time.Now()
			time.Sleep(after)
			close(stop)
			sent := <-loads

			var firstUnavailable, firstOKAfter time.Time
			var slowestRefusal, slowestQueued time.Duration
			refused, ok, queued := 0, 0, 0
			for _, l := range sent {
				took := l.replied.Sub(l.sent)
				code := domain.ErrorCode(l.err)
				switch {
				case code != "" && code != domain.CodeUnavailable:
					t.Errorf("login sent %v after the stop: %v", l.sent.Sub(down).Round(time.Millisecond), l.err)
				case code == domain.CodeUnavailable:
					refused++
					if firstUnavailable.IsZero() || l.replied.Before(firstUnavailable) {
						firstUnavailable = l.replied
					}
					var de *domain.Error
					if errors.As(l.err, &de) && de.RetryAfter <= 0 {
						t.Errorf("UNAVAILABLE without a retry-after: %v", l.err)
					}
				default:
					ok++
					if l.sent.After(back) && (firstOKAfter.IsZero() || l.replied.Before(firstOKAfter)) {
						firstOKAfter = l.replied
					}
				}
				if l.sent.After(down.Add(settle)) && l.sent.Before(starting) && queuedBehind(l, sent) {
					queued++
					slowestQueued = max(slowestQueued, took)
				} else if l.sent.After(down.Add(settle)) && l.sent.Before(starting) {
					if code != domain.CodeUnavailable {
						t.Errorf("login sent %v into the outage: %v, want UNAVAILABLE", l.sent.Sub(down).Round(time.Millisecond), l.err)
					}
					if took > time.Second {
						t.Errorf("login sent %v into the outage answered after %v, want within a second", l.sent.Sub(down).Round(time.Millisecond), took.Round(time.Millisecond))
					}
					slowestRefusal = max(slowestRefusal, took)
				}
				if l.sent.After(back.Add(settle)) && l.err != nil {
					t.Errorf("login sent %v after %s was back: %v, want OK", l.sent.Sub(back).Round(time.Millisecond), tt.store, l.err)
				}
			}
			if refused == 0 || firstOKAfter.IsZero() {
				t.Fatalf("%d logins refused, first OK after the return at %v: the outage did not show", refused, firstOKAfter)
			}
			t.Logf("%s outage: %d logins sent (%d OK, %d UNAVAILABLE), all answered; stop took %v; first UNAVAILABLE %v after the stop began; slowest UNAVAILABLE to a login sent a second in %v (%d more queued behind their account's login in flight, the slowest answered in %v); start took %v; first OK to a login sent after the return %v after the start returned",
				tt.store, len(sent), ok, refused, down.Sub(stopping).Round(time.Millisecond),
				firstUnavailable.Sub(stopping).Round(time.Millisecond), slowestRefusal.Round(time.Millisecond), queued, slowestQueued.Round(time.Millisecond),
				back.Sub(starting).Round(time.Millisecond), firstOKAfter.Sub(back).Round(time.Millisecond))
		})
	}
}
