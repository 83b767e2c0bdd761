package app_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/passwords"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

const password = "plum kayak violet thunder"

var kek = bytes.Repeat([]byte{0x42}, seal.KeySize)

// countingThrottle lets every attempt through (or refuses with beginErr)
// and counts what the use cases report.
type countingThrottle struct {
	mu                        sync.Mutex
	begun, succeeded, cancels int
	beginErr                  error
	lockedErr                 error
	retryAfter                time.Duration
}

func (t *countingThrottle) Begin(context.Context, domain.LoginAttempt) (domain.ThrottleVerdict, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.beginErr != nil || t.retryAfter > 0 {
		return domain.ThrottleVerdict{SourceRetryAfter: t.retryAfter}, t.beginErr
	}
	t.begun++
	return domain.ThrottleVerdict{}, nil
}

func (t *countingThrottle) Succeeded(context.Context, domain.LoginAttempt) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.succeeded++
	return nil
}

func (t *countingThrottle) Cancel(context.Context, domain.LoginAttempt) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.cancels++
	return nil
}

func (t *countingThrottle) Locked(context.Context, domain.Email) (bool, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return false, t.lockedErr
}

func (t *countingThrottle) Unlock(context.Context, domain.Email) error { return nil }

// counts returns the attempts counted as failures (begun, neither
// succeeded nor cancelled) and the successes.
func (t *countingThrottle) counts() (failed, succeeded int) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.begun - t.succeeded - t.cancels, t.succeeded
}

// flakyOutcomes is an outcome store whose next saves fail as unavailable,
// as a database that blinks would.
type flakyOutcomes struct {
	domain.OutcomeRepository
	mu        sync.Mutex
	saveFails int
	saves     int
	loadErr   error
}

func (o *flakyOutcomes) SaveOutcome(ctx context.Context, out domain.Outcome) error {
	o.mu.Lock()
	o.saves++
	fail := o.saveFails > 0
	if fail {
		o.saveFails--
	}
	o.mu.Unlock()
	if fail {
		return domain.Unavailable("outcome store", errors.New("connection reset"))
	}
	return o.OutcomeRepository.SaveOutcome(ctx, out)
}

func (o *flakyOutcomes) Outcome(ctx context.Context, key domain.RequestKey, now time.Time) (domain.Outcome, error) {
	if o.loadErr != nil {
		return domain.Outcome{}, o.loadErr
	}
	return o.OutcomeRepository.Outcome(ctx, key, now)
}

// failingUsers is a user store whose every call fails with err.
type failingUsers struct{ err error }

func (f failingUsers) CreateUser(context.Context, *domain.User) error { return f.err }
func (f failingUsers) UserByEmail(context.Context, domain.Email) (*domain.User, error) {
	return nil, f.err
}
func (f failingUsers) UpdateUser(context.Context, domain.UserID, func(*domain.User) error) error {
	return f.err
}
func (f failingUsers) UserByID(context.Context, domain.UserID) (*domain.User, error) {
	return nil, f.err
}
func (f failingUsers) EraseUser(context.Context, domain.UserID, time.Time) error { return f.err }

// fixture is a Service over the in-memory stores, with the real codec,
// hasher (at test costs), policy and issuer.
type fixture struct {
	deps     app.Deps
	cfg      app.Config
	users    *inmem.UserRepository
	outcomes *flakyOutcomes
	throttle *countingThrottle
	codec    *schemas.Codec
	outbox   *inmem.Outbox
}

// origin is where the test requests come from.
var origin = app.Origin{ReplyTopic: "auth.response"}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewBox(kek, "outcomes")
	if err != nil {
		t.Fatal(err)
	}
	digests, err := seal.NewMAC(kek, "requests")
	if err != nil {
		t.Fatal(err)
	}
	argon, err := passwords.NewHasher(passwords.HasherConfig{MemoryKiB: 64, Time: 1, AllowWeak: true})
	if err != nil {
		t.Fatal(err)
	}
	hasher, err := passwords.NewPool(argon, passwords.PoolConfig{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(hasher.Close)
	policy, err := passwords.NewPolicy(passwords.PolicyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), tokens.Config{
		Issuer: "https://auth.test", Audience: []string{"api"}, KeyEncryptionKey: kek,
	})
	if err != nil {
		t.Fatal(err)
	}
	users := inmem.NewUserRepository()
	f := &fixture{
		users:    users,
		outcomes: &flakyOutcomes{OutcomeRepository: inmem.NewOutcomeRepository()},
		throttle: &countingThrottle{},
		codec:    codec,
		outbox:   inmem.NewOutbox(),
		cfg:      app.Config{RetryWindow: 5 * time.Second, EventSource: "https://auth.test"},
	}
	f.deps = app.Deps{
		Codec:                  codec,
		Outcomes:               f.outcomes,
		Tx:                     inmem.Transactor{},
		Sealer:                 sealer,
		Digests:                digests,
		Outbox:                 f.outbox,
		Users:                  users,
		Sessions:               inmem.NewSessionRepository(users),
		Hasher:                 hasher,
		Policy:                 policy,
		Throttle:               f.throttle,
		Registrations:          unlimited{},
		Revocations:            &revocations{},
		Codes:                  inmem.NewCodeRepository(users),
		Notifier:               &notifier{},
		CodeRequests:           unlimited{},
		CodeRequestsPerAccount: unlimited{},
		RegisterConfig:         handlers.RegisterConfig{RevealConflict: true},
		Tokens:                 issuer,
		NewID:                  sequentialIDs(),
		Now:                    time.Now,
		Random:                 rand.Reader,
	}
	return f
}

func (f *fixture) service(t *testing.T) *app.Service {
	t.Helper()
	s, err := app.New(f.deps, f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// register stores an account for email with the test password.
func (f *fixture) register(t *testing.T, email string) {
	t.Helper()
	h := handlers.NewRegisterHandler(handlers.RegisterDeps{
		Work: plainWork{}, Users: f.users, Policy: f.deps.Policy, Hasher: f.deps.Hasher, Limiter: unlimited{},
		Events: ignoredEvents{}, NewID: f.deps.NewID, Now: time.Now,
	}, handlers.RegisterConfig{})
	if _, err := h.Handle(context.Background(), handlers.Register{Email: email, Password: password}); err != nil {
		t.Fatal(err)
	}
}

// ignoredEvents drops the events of the accounts a test sets up.
type ignoredEvents struct{}

func (ignoredEvents) Record(context.Context, ...domain.Event) {}

// unlimited is a rate limiter that allows everything.
type unlimited struct{}

func (unlimited) Allow(context.Context, string) (time.Duration, error) { return 0, nil }

// revocations is a revocation list in memory.
type revocations struct {
	mu  sync.Mutex
	ids map[domain.SessionID]bool
}

func (r *revocations) Revoke(_ context.Context, ids ...domain.SessionID) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.ids == nil {
		r.ids = map[domain.SessionID]bool{}
	}
	for _, id := range ids {
		r.ids[id] = true
	}
	return nil
}

func (r *revocations) Revoked(_ context.Context, id domain.SessionID) (bool, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.ids[id], nil
}

// notifier records notifications.
type notifier struct {
	mu   sync.Mutex
	sent []domain.Notification
}

func (n *notifier) Notify(_ context.Context, x domain.Notification) error {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.sent = append(n.sent, x)
	return nil
}

// plainWork runs a unit of work as is, for setting up accounts.
type plainWork struct{}

func (plainWork) Atomically(ctx context.Context, fn func(context.Context) (any, error)) (any, error) {
	return fn(ctx)
}

func (f *fixture) decode(t *testing.T, rep app.Reply) *schemas.Response {
	t.Helper()
	resp, err := f.codec.DecodeResponse(context.Background(), rep.Value)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

func sequentialIDs() func() string {
	var mu sync.Mutex
	n := 0
	return func() string {
		mu.Lock()
		defer mu.Unlock()
		n++
		return fmt.Sprintf("00000000-0000-7000-8000-%012d", n)
	}
}

func request(id string, op schemas.Operation) *schemas.Request {
	return &schemas.Request{RequestID: id, Client: schemas.ClientMetadata{ClientID: "web"}, Operation: op}
}

func loginOp(email, pw string) *schemas.Login { return &schemas.Login{Email: email, Password: pw} }
func registerOp(email, pw string) *schemas.Register {
	return &schemas.Register{Email: email, Password: pw}
}
