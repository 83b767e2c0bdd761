package app_test

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

func TestAnswer(t *testing.T) {
	past := time.Now().Add(-time.Second)
	future := time.Now().Add(time.Minute)
	tests := []struct {
		name       string
		prepare    func(*testing.T, *fixture)
		req        *schemas.Request
		wantStatus schemas.Status
		wantField  string
		wantStored bool
	}{
		{"RegisterOK", nil, request("r1", registerOp("ada@example.com", password)), schemas.StatusOK, "", true},
		{"LoginOK", func(t *testing.T, f *fixture) { f.register(t, "ada@example.com") },
			request("r1", loginOp("ada@example.com", password)), schemas.StatusOK, "", true},
		{"WrongPassword", func(t *testing.T, f *fixture) { f.register(t, "ada@example.com") },
			request("r1", loginOp("ada@example.com", "not the password at all")), schemas.StatusUnauthorized, "", true},
		{"EmailTaken", func(t *testing.T, f *fixture) { f.register(t, "ada@example.com") },
			request("r1", registerOp("ada@example.com", password)), schemas.StatusConflict, "", true},
		{"WeakPassword", nil, request("r1", registerOp("ada@example.com", "short")), schemas.StatusInvalid, "password", true},
		{"StoreDownIsUnavailable", func(t *testing.T, f *fixture) {
			f.deps.Users = failingUsers{domain.Unavailable("user store", errors.New("connection refused"))}
		}, request("r1", loginOp("ada@example.com", password)), schemas.StatusUnavailable, "", false},
		{"PlainErrorIsInternal", func(t *testing.T, f *fixture) {
			f.deps.Users = failingUsers{errors.New("boom: secret detail")}
		}, request("r1", loginOp("ada@example.com", password)), schemas.StatusInternal, "", false},
		{"RateLimited", func(t *testing.T, f *fixture) {
			f.throttle.retryAfter = time.Second
		}, request("r1", loginOp("ada@example.com", password)), schemas.StatusRateLimited, "", false},
		{"DeadlinePassed", nil, &schemas.Request{RequestID: "r1", Client: schemas.ClientMetadata{ClientID: "web"}, Deadline: &past,
			Operation: registerOp("ada@example.com", password)}, schemas.StatusDeadlineExceeded, "", false},
		{"DeadlineAhead", nil, &schemas.Request{RequestID: "r1", Client: schemas.ClientMetadata{ClientID: "web"}, Deadline: &future,
			Operation: registerOp("ada@example.com", password)}, schemas.StatusOK, "", true},
		{"NoRequestID", nil, request("", registerOp("ada@example.com", password)), schemas.StatusInvalid, "requestId", false},
		{"NoClientID", nil, &schemas.Request{RequestID: "r1", Operation: registerOp("ada@example.com", password)},
			schemas.StatusInvalid, "client.clientId", false},
		{"RequestIDTooManyBytes", nil, request(strings.Repeat("é", 128), registerOp("ada@example.com", password)),
			schemas.StatusInvalid, "requestId", false},
		{"IPNotAnAddress", nil, withClient(request("r1", loginOp("ada@example.com", password)), "not-an-ip", ""),
			schemas.StatusInvalid, "client.ip", false},
		{"UserAgentTooLong", nil, withClient(request("r1", loginOp("ada@example.com", password)), "", strings.Repeat("a", 100_000)),
			schemas.StatusInvalid, "client.userAgent", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if tt.prepare != nil {
				tt.prepare(t, f)
			}
			rep, err := f.service(t).Answer(context.Background(), tt.req, origin)
			if err != nil {
				t.Fatal(err)
			}
			resp := f.decode(t, rep)
			if resp.Status != tt.wantStatus || rep.Code != tt.wantStatus.Code() {
				t.Fatalf("reply %s (code %q), want %s", resp.Status, rep.Code, tt.wantStatus)
			}
			if resp.RequestID != tt.req.RequestID {
				t.Errorf("reply request id %q, want %q", resp.RequestID, tt.req.RequestID)
			}
			if e, ok := resp.Result.(*schemas.Error); ok {
				if strings.Contains(e.Message, "secret detail") || strings.Contains(e.Message, "connection refused") {
					t.Errorf("the error's cause reached the wire: %q", e.Message)
				}
				if tt.wantField != "" && (e.Field == nil || *e.Field != tt.wantField) {
					t.Errorf("field %v, want %s", e.Field, tt.wantField)
				}
				if (resp.Status == schemas.StatusUnavailable || resp.Status == schemas.StatusRateLimited) && (e.RetryAfterMs == nil || *e.RetryAfterMs <= 0) {
					t.Errorf("%s without a retry-after", resp.Status)
				}
			}
			_, err = f.outcomes.Outcome(context.Background(), domain.RequestKey{ClientID: "web", RequestID: tt.req.RequestID}, time.Now())
			if stored := err == nil; stored != tt.wantStored {
				t.Errorf("outcome stored = %v, want %v", stored, tt.wantStored)
			}
		})
	}
}

// TestAnswerReplays: a request answered before gets the stored reply, byte
// for byte, and nothing runs again; a failure a retry may cure is not
// stored, so the retry runs.
func TestAnswerReplays(t *testing.T) {
	t.Run("RegisterOnce", func(t *testing.T) {
		f := newFixture(t)
		s := f.service(t)
		req := request("r1", registerOp("ada@example.com", password))
		first, _ := s.Answer(context.Background(), req, origin)
		again, _ := s.Answer(context.Background(), req, origin)
		if !bytes.Equal(first.Value, again.Value) || first.Code != again.Code {
			t.Error("the second answer differs from the first, want it replayed")
		}
		if first.Replayed || !again.Replayed {
			t.Errorf("replayed = %v, %v; want false, true", first.Replayed, again.Replayed)
		}
	})
	t.Run("FailedLoginCountedOnce", func(t *testing.T) {
		f := newFixture(t)
		f.register(t, "ada@example.com")
		s := f.service(t)
		req := request("r1", loginOp("ada@example.com", "not the password at all"))
		for range 3 {
			rep, _ := s.Answer(context.Background(), req, origin)
			if rep.Code != domain.CodeUnauthorized {
				t.Fatalf("code %q, want unauthorized", rep.Code)
			}
		}
		if failed, _ := f.throttle.counts(); failed != 1 {
			t.Errorf("throttle counted %d failures for one request answered three times, want 1", failed)
		}
	})
	t.Run("UnavailableRunsAgain", func(t *testing.T) {
		f := newFixture(t)
		f.register(t, "ada@example.com")
		f.throttle.beginErr = domain.Unavailable("throttle store", errors.New("down"))
		s := f.service(t)
		req := request("r1", loginOp("ada@example.com", password))
		if rep, _ := s.Answer(context.Background(), req, origin); rep.Code != domain.CodeUnavailable {
			t.Fatalf("code %q, want unavailable", rep.Code)
		}
		f.throttle.beginErr = nil
		rep, _ := s.Answer(context.Background(), req, origin)
		if rep.Code != "" || rep.Replayed {
			t.Errorf("retry: code %q replayed %v, want a fresh OK", rep.Code, rep.Replayed)
		}
	})
	t.Run("StoredReplyIsSealed", func(t *testing.T) {
		f := newFixture(t)
		f.register(t, "ada@example.com")
		rep, _ := f.service(t).Answer(context.Background(), request("r1", loginOp("ada@example.com", password)), origin)
		res := f.decode(t, rep).Result.(*schemas.LoginResult)
		o, err := f.outcomes.Outcome(context.Background(), domain.RequestKey{ClientID: "web", RequestID: "r1"}, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(o.Reply, []byte(res.RefreshToken)) || bytes.Contains(o.Reply, []byte(res.AccessToken)) {
			t.Error("the stored reply holds the tokens in the clear")
		}
	})
}

// TestFailedLoginCountedOnceWhenTheOutcomeStoreBlinks: storing the outcome
// of a wrong-password login fails once and is retried; the attempt is still
// counted once, and the password verified once.
func TestFailedLoginCountedOnceWhenTheOutcomeStoreBlinks(t *testing.T) {
	f := newFixture(t)
	f.register(t, "ada@example.com")
	f.outcomes.saveFails = 1
	rep, err := f.service(t).Answer(context.Background(), request("r1", loginOp("ada@example.com", "not the password at all")), origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != domain.CodeUnauthorized {
		t.Fatalf("code %q, want unauthorized", rep.Code)
	}
	if failed, _ := f.throttle.counts(); failed != 1 {
		t.Errorf("throttle counted %d failures, want 1", failed)
	}
	if f.outcomes.saves != 2 {
		t.Errorf("outcome saved %d times, want a failed save and its retry", f.outcomes.saves)
	}
}

func TestAnswerUnavailableBeyondTheWindow(t *testing.T) {
	f := newFixture(t)
	f.outcomes.saveFails = 1000
	clock := time.Now()
	var mu sync.Mutex
	f.cfg = app.Config{RetryWindow: time.Second, Now: func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		clock = clock.Add(100 * time.Millisecond)
		return clock
	}}
	rep, err := f.service(t).Answer(context.Background(), request("r1", registerOp("ada@example.com", password)), origin)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Code != domain.CodeUnavailable {
		t.Errorf("code %q, want unavailable", rep.Code)
	}
	if f.outcomes.saves < 2 {
		t.Errorf("unit of work ran %d times, want retries", f.outcomes.saves)
	}
}

// TestAnswerAtShutdown: when the worker stops while a request waits for the
// database, Answer gives up without an outcome, so the record is read again.
func TestAnswerAtShutdown(t *testing.T) {
	f := newFixture(t)
	f.outcomes.saveFails = 1000
	f.cfg.RetryWindow = time.Minute
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(300*time.Millisecond, cancel)
	_, err := f.service(t).Answer(ctx, request("r1", registerOp("ada@example.com", password)), origin)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Answer at shutdown = %v, want context.Canceled", err)
	}
}

// TestConcurrentDeliveriesOneOutcome: two deliveries of one request at once
// end with one outcome, which both answer.
func TestConcurrentDeliveriesOneOutcome(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	req := request("r1", registerOp("ada@example.com", password))
	reps := make([]app.Reply, 2)
	var wg sync.WaitGroup
	for i := range reps {
		wg.Go(func() { reps[i], _ = s.Answer(context.Background(), req, origin) })
	}
	wg.Wait()
	if !bytes.Equal(reps[0].Value, reps[1].Value) {
		t.Errorf("two deliveries got different replies: %q and %q", reps[0].Code, reps[1].Code)
	}
	if reps[0].Code != "" {
		t.Errorf("code %q, want OK", reps[0].Code)
	}
}

// TestRegistryCoversTheSchema: every operation the request schema carries
// has a use case.
func TestRegistryCoversTheSchema(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	for i, op := range schemas.Operations() {
		rep, err := s.Answer(context.Background(), request("r"+string(rune('a'+i)), op), origin)
		if err != nil {
			t.Fatal(err)
		}
		if rep.Code == domain.CodeInternal {
			t.Errorf("%T is answered INTERNAL: no use case registered", op)
		}
	}
}

func TestNewNeedsEveryPort(t *testing.T) {
	f := newFixture(t)
	f.deps.Hasher = nil
	if _, err := app.New(f.deps, app.Config{}); err == nil || !strings.Contains(err.Error(), "Hasher") {
		t.Errorf("New without a hasher = %v, want an error naming it", err)
	}
}

func withClient(req *schemas.Request, ip, userAgent string) *schemas.Request {
	if ip != "" {
		req.Client.IP = &ip
	}
	if userAgent != "" {
		req.Client.UserAgent = &userAgent
	}
	return req
}

// TestReusedRequestID: a stored reply goes only to the request it answers.
// Anyone who reuses a client id and request id with another request (other
// credentials, another operation, another reply topic) is refused with
// CONFLICT on requestId, and the first request's exact retry still gets its
// reply byte for byte.
func TestReusedRequestID(t *testing.T) {
	first := request("r1", loginOp("ada@example.com", password))
	tests := []struct {
		name       string
		req        *schemas.Request
		replyTopic string
		wantReuse  bool
	}{
		{"ExactRetry", request("r1", loginOp("ada@example.com", password)), "auth.response", false},
		{"RetryWithNewMetadata", withClient(request("r1", loginOp("ada@example.com", password)), "192.0.2.9", "other agent"), "auth.response", false},
		{"OtherPassword", request("r1", loginOp("ada@example.com", "a retyped password, not the same")), "auth.response", true},
		{"WrongPasswordProbe", request("r1", loginOp("ada@example.com", "not the password at all")), "auth.response", true},
		{"OtherOperation", request("r1", registerOp("eve@example.com", password)), "auth.response", true},
		{"OtherReplyTopic", request("r1", loginOp("ada@example.com", password)), "auth.response.eve", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.register(t, "ada@example.com")
			s := f.service(t)
			original, err := s.Answer(context.Background(), first, origin)
			if err != nil || original.Code != "" {
				t.Fatalf("first login: %v %q", err, original.Code)
			}
			rep, err := s.Answer(context.Background(), tt.req, app.Origin{ReplyTopic: tt.replyTopic})
			if err != nil {
				t.Fatal(err)
			}
			if !tt.wantReuse {
				if !bytes.Equal(rep.Value, original.Value) || !rep.Replayed {
					t.Error("a retry of the request did not get its stored reply")
				}
				return
			}
			resp := f.decode(t, rep)
			e, ok := resp.Result.(*schemas.Error)
			if resp.Status != schemas.StatusConflict || !ok || e.Field == nil || *e.Field != "requestId" {
				t.Fatalf("reply %s %+v, want CONFLICT on requestId", resp.Status, resp.Result)
			}
			if bytes.Contains(rep.Value, []byte("eyJ")) {
				t.Error("the refusal carries a token")
			}
			again, _ := s.Answer(context.Background(), first, origin)
			if !bytes.Equal(again.Value, original.Value) {
				t.Error("after a reuse, the first request's retry no longer gets its reply")
			}
		})
	}
	t.Run("OtherClientSameRequestID", func(t *testing.T) {
		f := newFixture(t)
		f.register(t, "ada@example.com")
		s := f.service(t)
		if _, err := s.Answer(context.Background(), first, origin); err != nil {
			t.Fatal(err)
		}
		other := request("r1", loginOp("ada@example.com", password))
		other.Client.ClientID = "billing"
		rep, _ := s.Answer(context.Background(), other, origin)
		if rep.Code != "" || rep.Replayed {
			t.Errorf("another client's request id r1: code %q replayed %v, want its own fresh login", rep.Code, rep.Replayed)
		}
	})
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name    string
		cfg     app.Config
		wantErr string
	}{
		{"Defaults", app.Config{}, ""},
		{"IssuerAsSource", app.Config{EventSource: "https://auth.example.com"}, ""},
		{"RelativeSource", app.Config{EventSource: "/authworker/eu-1"}, ""},
		{"SourceWithSpace", app.Config{EventSource: "not a uri"}, "event source"},
		{"SourceWithControl", app.Config{EventSource: "https://auth\x00"}, "event source"},
		{"IllegalEventsTopic", app.Config{EventsTopic: "auth events"}, "events topic"},
		{"NegativeWindow", app.Config{RetryWindow: -time.Second}, "retry window"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			_, err := app.New(f.deps, tt.cfg)
			if (err == nil) != (tt.wantErr == "") || (err != nil && !strings.Contains(err.Error(), tt.wantErr)) {
				t.Errorf("New = %v, want an error about %q", err, tt.wantErr)
			}
		})
	}
}

// TestOperationNames: every operation of the schema has one name, the
// names are the registry's, and a record the worker does not answer has
// none.
func TestOperationNames(t *testing.T) {
	names := app.OperationNames()
	seen := map[string]bool{}
	for _, op := range schemas.Operations() {
		name := app.OperationName(op)
		if name == "" || seen[name] || !slices.Contains(names, name) {
			t.Errorf("OperationName(%T) = %q, want a name of its own from %v", op, name, names)
		}
		seen[name] = true
	}
	if len(seen) != len(names) {
		t.Errorf("%d operations in the schema, %d names", len(seen), len(names))
	}
	if got := app.OperationName(nil); got != "" {
		t.Errorf("OperationName(nil) = %q, want \"\"", got)
	}
}
