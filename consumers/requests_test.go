package consumers_test

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
)

// fakeReplier records replies; routes come from a real producers.Replies so
// the header rules are the product's own.
type fakeReplier struct {
	routes *producers.Replies
	mu     sync.Mutex
	sent   []sentReply
}

type sentReply struct {
	route producers.Route
	code  domain.Code
	value []byte
}

func (f *fakeReplier) RouteFor(m *kafka.Message) (producers.Route, error) {
	return f.routes.RouteFor(m)
}

func (f *fakeReplier) Send(_ context.Context, r producers.Route, code domain.Code, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.sent = append(f.sent, sentReply{r, code, value})
	return nil
}

type fakeDeadLetters struct {
	mu      sync.Mutex
	reasons []string
}

func (f *fakeDeadLetters) Send(_ context.Context, _ *kafka.Message, reason, _ string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reasons = append(f.reasons, reason)
	return nil
}

// useCase answers with fixed results, failing the first failures calls.
type useCase[C, R any] struct {
	mu       sync.Mutex
	calls    int
	failures int
	failWith error
	result   R
}

func (u *useCase[C, R]) Handle(context.Context, C) (R, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.calls++
	if u.calls <= u.failures {
		var zero R
		return zero, u.failWith
	}
	return u.result, nil
}

type fixture struct {
	codec    *schemas.Codec
	outcomes *inmem.OutcomeRepository
	sealer   *seal.Box
	replies  *fakeReplier
	dead     *fakeDeadLetters
	register *useCase[handlers.Register, handlers.RegisterResult]
	login    *useCase[handlers.Login, handlers.LoginResult]
	requests *consumers.Requests
}

var now = time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)

func newFixture(t *testing.T) *fixture {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	routes, err := producers.NewReplies(nil, producers.ReplyConfig{})
	if err != nil {
		t.Fatal(err)
	}
	sealer, err := seal.NewBox(make([]byte, seal.KeySize), "outcomes")
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		codec:    codec,
		outcomes: inmem.NewOutcomeRepository(),
		sealer:   sealer,
		replies:  &fakeReplier{routes: routes},
		dead:     &fakeDeadLetters{},
		register: &useCase[handlers.Register, handlers.RegisterResult]{result: handlers.RegisterResult{UserID: "u1"}},
		login: &useCase[handlers.Login, handlers.LoginResult]{result: handlers.LoginResult{
			UserID: "u1", SessionID: "s1", AccessToken: domain.AccessToken{Token: "at", ExpiresAt: now}, RefreshToken: "rt", RefreshTokenExpiresAt: now,
		}},
	}
	f.requests = f.newRequests(consumers.RequestsConfig{RetryWindow: time.Second, Now: func() time.Time { return now }})
	return f
}

func (f *fixture) newRequests(cfg consumers.RequestsConfig) *consumers.Requests {
	return consumers.NewRequests(consumers.RequestsDeps{
		Codec:       f.codec,
		Replies:     f.replies,
		DeadLetters: f.dead,
		UseCases:    consumers.UseCases{Register: f.register, Login: f.login},
		Outcomes:    f.outcomes,
		Tx:          inmem.Transactor{},
		Sealer:      f.sealer,
	}, cfg)
}

func (f *fixture) message(t *testing.T, req *schemas.Request, headers ...kafka.Header) *kafka.Message {
	t.Helper()
	value, err := f.codec.EncodeRequest(req)
	if err != nil {
		t.Fatal(err)
	}
	return &kafka.Message{Key: []byte("ada@example.com"), Value: value, Headers: headers}
}

func (f *fixture) onlyReply(t *testing.T) (*schemas.Response, domain.Code) {
	t.Helper()
	if len(f.replies.sent) != 1 {
		t.Fatalf("%d replies sent, want 1", len(f.replies.sent))
	}
	r := f.replies.sent[0]
	resp, err := f.codec.DecodeResponse(context.Background(), r.value)
	if err != nil {
		t.Fatal(err)
	}
	return resp, r.code
}

func request(op schemas.Operation) *schemas.Request {
	return &schemas.Request{RequestID: "r1", Client: schemas.ClientMetadata{ClientID: "web"}, Operation: op}
}

var correlation = kafka.Header{Key: producers.HeaderCorrelationID, Value: []byte{1, 2, 3}}

func TestRequestsAnswer(t *testing.T) {
	past, future := now.Add(-time.Second), time.Now().Add(time.Minute) // contexts run on the real clock
	tests := []struct {
		name       string
		prepare    func(*fixture)
		req        *schemas.Request
		wantStatus schemas.Status
		wantCode   domain.Code
	}{
		{"RegisterOK", nil, request(&schemas.Register{Email: "ada@example.com", Password: "pw"}), schemas.StatusOK, ""},
		{"LoginOK", nil, request(&schemas.Login{Email: "ada@example.com", Password: "pw"}), schemas.StatusOK, ""},
		{"Unauthorized", func(f *fixture) {
			f.login.failures, f.login.failWith = 1, domain.Errorf(domain.CodeUnauthorized, "invalid email or password")
		}, request(&schemas.Login{Email: "ada@example.com", Password: "pw"}), schemas.StatusUnauthorized, domain.CodeUnauthorized},
		{"PlainErrorIsInternal", func(f *fixture) {
			f.register.failures, f.register.failWith = 1, errors.New("boom: secret detail")
		}, request(&schemas.Register{Email: "ada@example.com", Password: "pw"}), schemas.StatusInternal, domain.CodeInternal},
		{"UnavailableRetriedThenOK", func(f *fixture) {
			f.login.failures, f.login.failWith = 2, domain.Unavailable("user store", errors.New("down"))
		}, request(&schemas.Login{Email: "ada@example.com", Password: "pw"}), schemas.StatusOK, ""},
		{"DeadlinePassed", nil, &schemas.Request{RequestID: "r1", Client: schemas.ClientMetadata{ClientID: "web"}, Deadline: &past, Operation: &schemas.Login{Email: "a@example.com", Password: "pw"}},
			schemas.StatusDeadlineExceeded, domain.CodeDeadlineExceeded},
		{"DeadlineAhead", nil, &schemas.Request{RequestID: "r1", Client: schemas.ClientMetadata{ClientID: "web"}, Deadline: &future, Operation: &schemas.Login{Email: "a@example.com", Password: "pw"}},
			schemas.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			if err := f.requests.Handle(context.Background(), f.message(t, tt.req, correlation)); err != nil {
				t.Fatal(err)
			}
			resp, code := f.onlyReply(t)
			if resp.Status != tt.wantStatus || code != tt.wantCode {
				t.Errorf("reply status %s code %q, want %s %q", resp.Status, code, tt.wantStatus, tt.wantCode)
			}
			if resp.RequestID != "r1" {
				t.Errorf("reply request id %q, want r1", resp.RequestID)
			}
			if e, ok := resp.Result.(*schemas.Error); ok && e.Message == "boom: secret detail" {
				t.Error("an internal error's detail reached the reply")
			}
			if string(f.replies.sent[0].route.CorrelationID) != "\x01\x02\x03" {
				t.Errorf("correlation id %x, want 010203", f.replies.sent[0].route.CorrelationID)
			}
		})
	}
}

func TestRequestsErrorDetails(t *testing.T) {
	f := newFixture(t)
	f.login.failures = 1
	f.login.failWith = &domain.Error{Code: domain.CodeRateLimited, Message: "too many failed logins from this source", RetryAfter: 90 * time.Second}
	if err := f.requests.Handle(context.Background(), f.message(t, request(&schemas.Login{Email: "a@example.com", Password: "pw"}))); err != nil {
		t.Fatal(err)
	}
	resp, _ := f.onlyReply(t)
	e, ok := resp.Result.(*schemas.Error)
	if !ok || e.RetryAfterMs == nil || *e.RetryAfterMs != 90000 {
		t.Errorf("result %#v, want retryAfterMs 90000", resp.Result)
	}

	f = newFixture(t)
	f.register.failures, f.register.failWith = 1, domain.Invalid("password", "password must have at least 15 characters")
	if err := f.requests.Handle(context.Background(), f.message(t, request(&schemas.Register{Email: "a@example.com", Password: "pw"}))); err != nil {
		t.Fatal(err)
	}
	resp, _ = f.onlyReply(t)
	if e, ok := resp.Result.(*schemas.Error); !ok || e.Field == nil || *e.Field != "password" {
		t.Errorf("result %#v, want field password", resp.Result)
	}
}

func TestRequestsUnavailableBeyondWindow(t *testing.T) {
	f := newFixture(t)
	f.login.failures, f.login.failWith = 1000, domain.Unavailable("user store", errors.New("down"))
	clock := now
	f.requests = f.newRequests(consumers.RequestsConfig{RetryWindow: 300 * time.Millisecond, Now: func() time.Time { clock = clock.Add(100 * time.Millisecond); return clock }})
	if err := f.requests.Handle(context.Background(), f.message(t, request(&schemas.Login{Email: "a@example.com", Password: "pw"}))); err != nil {
		t.Fatal(err)
	}
	resp, code := f.onlyReply(t)
	if resp.Status != schemas.StatusUnavailable || code != domain.CodeUnavailable {
		t.Errorf("reply %s %q, want UNAVAILABLE", resp.Status, code)
	}
	if f.login.calls < 2 {
		t.Errorf("use case called %d times, want retries", f.login.calls)
	}
}

func TestRequestsDeadLetters(t *testing.T) {
	tests := []struct {
		name       string
		value      []byte
		headers    []kafka.Header
		wantReason string
		wantReply  bool
	}{
		{"Undecodable", []byte("not avro"), nil, "undecodable", false},
		{"UndecodableWithCorrelation", []byte("not avro"), []kafka.Header{correlation}, "undecodable", true},
		{"ForeignReplyTopic", nil, []kafka.Header{{Key: producers.HeaderReplyTopic, Value: []byte("orders")}}, "reply_topic_not_allowed", false},
		{"BadReplyPartition", nil, []kafka.Header{{Key: producers.HeaderReplyPartition, Value: []byte{1}}}, "bad_reply_headers", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			msg := f.message(t, request(&schemas.Register{Email: "a@example.com", Password: "pw"}), tt.headers...)
			if tt.value != nil {
				msg.Value = tt.value
			}
			if err := f.requests.Handle(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			if len(f.dead.reasons) != 1 || f.dead.reasons[0] != tt.wantReason {
				t.Errorf("dead letters %v, want [%s]", f.dead.reasons, tt.wantReason)
			}
			if f.register.calls != 0 {
				t.Error("an unanswerable request was acted on")
			}
			if got := len(f.replies.sent) == 1; got != tt.wantReply {
				t.Fatalf("replied = %v, want %v", got, tt.wantReply)
			}
			if tt.wantReply {
				if resp, code := f.onlyReply(t); resp.Status != schemas.StatusInvalid || code != domain.CodeInvalid {
					t.Errorf("reply %s %q, want INVALID", resp.Status, code)
				}
			}
		})
	}
}

func TestRequestsShutdownLeavesNoOutcome(t *testing.T) {
	f := newFixture(t)
	f.login.failures, f.login.failWith = 1000, domain.Unavailable("user store", errors.New("down"))
	f.requests = f.newRequests(consumers.RequestsConfig{RetryWindow: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	err := f.requests.Handle(ctx, f.message(t, request(&schemas.Login{Email: "a@example.com", Password: "pw"})))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Handle during shutdown = %v, want context.Canceled so the record is consumed again", err)
	}
	if len(f.replies.sent) != 0 {
		t.Errorf("%d replies sent during shutdown, want none", len(f.replies.sent))
	}
}

func TestRequestsReplayStoredOutcome(t *testing.T) {
	tests := []struct {
		name      string
		prepare   func(*fixture)
		req       *schemas.Request
		wantCalls int // use case calls for two deliveries
		wantStore bool
	}{
		{"SuccessOnce", nil, request(&schemas.Register{Email: "a@example.com", Password: "pw"}), 1, true},
		{"FinalFailureOnce", func(f *fixture) {
			f.register.failures, f.register.failWith = 2, domain.Errorf(domain.CodeConflict, "email already registered")
		}, request(&schemas.Register{Email: "a@example.com", Password: "pw"}), 1, true},
		{"RateLimitedAgain", func(f *fixture) {
			f.register.failures, f.register.failWith = 2, &domain.Error{Code: domain.CodeRateLimited, Message: "slow down", RetryAfter: time.Second}
		}, request(&schemas.Register{Email: "a@example.com", Password: "pw"}), 2, false},
		{"InternalAgain", func(f *fixture) {
			f.register.failures, f.register.failWith = 2, errors.New("bug")
		}, request(&schemas.Register{Email: "a@example.com", Password: "pw"}), 2, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.prepare != nil {
				tt.prepare(f)
			}
			msg := f.message(t, tt.req, correlation)
			for range 2 {
				if err := f.requests.Handle(context.Background(), msg); err != nil {
					t.Fatal(err)
				}
			}
			if f.register.calls != tt.wantCalls {
				t.Errorf("use case ran %d times for two deliveries, want %d", f.register.calls, tt.wantCalls)
			}
			if len(f.replies.sent) != 2 {
				t.Fatalf("%d replies, want 2", len(f.replies.sent))
			}
			first, second := f.replies.sent[0], f.replies.sent[1]
			if tt.wantStore && (string(first.value) != string(second.value) || first.code != second.code) {
				t.Error("the second delivery's reply differs from the first, want it replayed")
			}
			stored, err := f.outcomes.Outcome(context.Background(), domain.RequestKey{ClientID: "web", RequestID: "r1"}, now)
			if gotStore := err == nil; gotStore != tt.wantStore {
				t.Fatalf("outcome stored = %v (%v), want %v", gotStore, err, tt.wantStore)
			}
			if tt.wantStore && strings.Contains(string(stored.Reply), "u1") {
				t.Error("stored reply is not sealed")
			}
		})
	}
}

func TestRequestsNeedIDs(t *testing.T) {
	tests := []struct {
		name      string
		req       *schemas.Request
		wantField string
	}{
		{"NoRequestID", &schemas.Request{Client: schemas.ClientMetadata{ClientID: "web"}, Operation: &schemas.Login{Email: "a@example.com", Password: "pw"}}, "requestId"},
		{"NoClientID", &schemas.Request{RequestID: "r1", Operation: &schemas.Login{Email: "a@example.com", Password: "pw"}}, "client.clientId"},
		{"LongRequestID", &schemas.Request{RequestID: strings.Repeat("r", 256), Client: schemas.ClientMetadata{ClientID: "web"}, Operation: &schemas.Login{Email: "a@example.com", Password: "pw"}}, "requestId"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.requests.Handle(context.Background(), f.message(t, tt.req)); err != nil {
				t.Fatal(err)
			}
			resp, code := f.onlyReply(t)
			e, ok := resp.Result.(*schemas.Error)
			if code != domain.CodeInvalid || !ok || e.Field == nil || *e.Field != tt.wantField {
				t.Errorf("reply %s %#v, want INVALID on %s", resp.Status, resp.Result, tt.wantField)
			}
			if f.login.calls != 0 {
				t.Error("use case ran for a request without ids")
			}
		})
	}
}
