package app_test

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// fakeHealth is a store's health as a test sets it, counting the requests
// that suspected the store.
type fakeHealth struct {
	down     atomic.Bool
	suspects atomic.Int64
}

func (h *fakeHealth) Down() bool { return h.down.Load() }
func (h *fakeHealth) Suspect()   { h.suspects.Add(1) }

// withHealth gives f's service the health of both stores, and returns it.
func withHealth(f *fixture) (pg, rd *fakeHealth) {
	pg, rd = &fakeHealth{}, &fakeHealth{}
	f.deps.Health = map[app.Store]app.StoreHealth{app.Postgres: pg, app.Redis: rd}
	return pg, rd
}

var (
	accessShaped  = "eyJhbGciOiJFZERTQSJ9.e30.c2ln"                   // a JWT's shape: Redis's revocation list
	refreshShaped = strings.Repeat("A", 42) + "E"                     // a refresh token's shape: PostgreSQL
	unknownToken  = &schemas.Introspect{Token: "neither kind at all"} // inactive without a lookup
)

// TestStoreKnownDown: a request that needs a store known to be down is
// answered UNAVAILABLE with a retry-after at once, before its use case runs
// (no throttle count, no hash); a request that needs only the other store
// flows; a stored outcome is still replayed while only Redis is down.
func TestStoreKnownDown(t *testing.T) {
	tests := []struct {
		name       string
		down       app.Store // "" for none
		prepare    func(*testing.T, *fixture, *app.Service)
		op         schemas.Operation
		wantStatus schemas.Status
		wantBegun  int // logins the throttle saw begin
	}{
		{"UpLoginOK", "", registerAda, loginOp("ada@example.com", password), schemas.StatusOK, 1},
		{"RedisDownLoginRefused", app.Redis, registerAda, loginOp("ada@example.com", password), schemas.StatusUnavailable, 0},
		{"PostgresDownLoginRefused", app.Postgres, registerAda, loginOp("ada@example.com", password), schemas.StatusUnavailable, 0},
		{"RedisDownRegisterRefused", app.Redis, nil, registerOp("ada@example.com", password), schemas.StatusUnavailable, 0},
		{"RedisDownAccessIntrospectRefused", app.Redis, nil, &schemas.Introspect{Token: accessShaped}, schemas.StatusUnavailable, 0},
		{"PostgresDownAccessIntrospectFlows", app.Postgres, nil, &schemas.Introspect{Token: accessShaped}, schemas.StatusOK, 0},
		{"RedisDownRefreshIntrospectFlows", app.Redis, nil, &schemas.Introspect{Token: refreshShaped}, schemas.StatusOK, 0},
		{"PostgresDownRefreshIntrospectRefused", app.Postgres, nil, &schemas.Introspect{Token: refreshShaped}, schemas.StatusUnavailable, 0},
		{"PostgresDownBogusIntrospectFlows", app.Postgres, nil, unknownToken, schemas.StatusOK, 0},
		{"RedisDownLogoutFlows", app.Redis, nil, &schemas.Logout{RefreshToken: &refreshShaped}, schemas.StatusUnauthorized, 0},
		{"RedisDownVerifyEmailFlows", app.Redis, nil, &schemas.VerifyEmail{Email: "ada@example.com", Code: "12345678"}, schemas.StatusUnauthorized, 0},
		{"PostgresDownLogoutRefused", app.Postgres, nil, &schemas.Logout{RefreshToken: &refreshShaped}, schemas.StatusUnavailable, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			pg, rd := withHealth(f)
			s := f.service(t)
			if tt.prepare != nil {
				tt.prepare(t, f, s)
			}
			pg.down.Store(tt.down == app.Postgres)
			rd.down.Store(tt.down == app.Redis)
			rep, err := s.Answer(context.Background(), request("r1", tt.op), origin)
			if err != nil {
				t.Fatal(err)
			}
			resp := f.decode(t, rep)
			if resp.Status != tt.wantStatus {
				t.Fatalf("reply %s, want %s", resp.Status, tt.wantStatus)
			}
			if resp.Status == schemas.StatusUnavailable {
				e := resp.Result.(*schemas.Error)
				if e.RetryAfterMs == nil || *e.RetryAfterMs <= 0 {
					t.Errorf("UNAVAILABLE without a retry-after")
				}
			}
			if failed, succeeded := f.throttle.counts(); failed+succeeded != tt.wantBegun {
				t.Errorf("throttle saw %d logins, want %d", failed+succeeded, tt.wantBegun)
			}
		})
	}
}

func registerAda(t *testing.T, f *fixture, _ *app.Service) { f.register(t, "ada@example.com") }

// TestStoreKnownDownReplaysStoredOutcome: with Redis down, a request whose
// outcome is stored in PostgreSQL still gets it.
func TestStoreKnownDownReplaysStoredOutcome(t *testing.T) {
	f := newFixture(t)
	_, rd := withHealth(f)
	s := f.service(t)
	req := request("r1", registerOp("ada@example.com", password))
	if rep, _ := s.Answer(context.Background(), req, origin); rep.Code != "" {
		t.Fatalf("register: %s", rep.Code)
	}
	rd.down.Store(true)
	rep, err := s.Answer(context.Background(), req, origin)
	if err != nil || rep.Code != "" || !rep.Replayed {
		t.Errorf("register again with Redis down: code %q replayed %v (%v), want the stored OK", rep.Code, rep.Replayed, err)
	}
}

// TestUnavailableSuspectsTheStores: a request that found a store
// unavailable has the stores its operation needs checked; a request that
// did not, none.
func TestUnavailableSuspectsTheStores(t *testing.T) {
	tests := []struct {
		name              string
		usersErr          error
		op                schemas.Operation
		wantPG, wantRedis int64
	}{
		{"LoginUnavailable", domain.Unavailable("user store", errors.New("connection refused")), loginOp("ada@example.com", password), 1, 1},
		{"LoginRefused", nil, loginOp("ada@example.com", "not the password at all"), 0, 0},
		{"VerifyEmailUnavailable", domain.Unavailable("user store", errors.New("connection refused")),
			&schemas.VerifyEmail{Email: "ada@example.com", Code: "12345678"}, 1, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.usersErr != nil {
				f.deps.Users = failingUsers{tt.usersErr}
			}
			pg, rd := withHealth(f)
			if _, err := f.service(t).Answer(context.Background(), request("r1", tt.op), origin); err != nil {
				t.Fatal(err)
			}
			if got := pg.suspects.Load(); got != tt.wantPG {
				t.Errorf("postgres suspected %d times, want %d", got, tt.wantPG)
			}
			if got := rd.suspects.Load(); got != tt.wantRedis {
				t.Errorf("redis suspected %d times, want %d", got, tt.wantRedis)
			}
		})
	}
}
