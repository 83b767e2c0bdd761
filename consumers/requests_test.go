package consumers_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/consumers"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// fakeReplier records replies. It finds every route deliverable unless
// checkErr is set, and every send fails with sendErr when that is set.
type fakeReplier struct {
	mu       sync.Mutex
	sent     []sentReply
	checked  []schemas.Route
	checkErr error
	sendErr  error
}

type sentReply struct {
	route schemas.Route
	code  domain.Code
	value []byte
}

func (f *fakeReplier) Deliverable(_ context.Context, r schemas.Route) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.checked = append(f.checked, r)
	return f.checkErr
}

func (f *fakeReplier) Send(_ context.Context, r schemas.Route, code domain.Code, value []byte) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.sendErr != nil {
		return f.sendErr
	}
	f.sent = append(f.sent, sentReply{r, code, value})
	return nil
}

type fakeDeadLetters struct {
	mu      sync.Mutex
	reasons []string
	details []string
}

func (f *fakeDeadLetters) Send(_ context.Context, _ *kafka.Message, reason, detail string) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reasons = append(f.reasons, reason)
	f.details = append(f.details, detail)
	return nil
}

// fakeAnswerer answers every request with reply, or fails with err, and
// records what it was asked.
type fakeAnswerer struct {
	reply      app.Reply
	err        error
	calls      int
	replyTopic string
	origin     app.Origin
}

func (f *fakeAnswerer) Answer(_ context.Context, _ *schemas.Request, origin app.Origin) (app.Reply, error) {
	f.calls++
	f.replyTopic = origin.ReplyTopic
	f.origin = origin
	return f.reply, f.err
}

type fixture struct {
	codec    *schemas.Codec
	answerer *fakeAnswerer
	replies  *fakeReplier
	dead     *fakeDeadLetters
	observer *fakeObserver
	requests *consumers.Requests
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{
		codec:    codec,
		answerer: &fakeAnswerer{reply: app.Reply{Value: []byte("reply"), Code: domain.CodeUnauthorized}},
		replies:  &fakeReplier{},
		dead:     &fakeDeadLetters{},
		observer: &fakeObserver{},
	}
	f.requests, err = consumers.NewRequests(consumers.RequestsDeps{
		Codec:       codec,
		Routing:     schemas.ReplyRouting{AllowedTopics: []string{"auth.response", "auth.response.*"}},
		Answerer:    f.answerer,
		Replies:     f.replies,
		DeadLetters: f.dead,
		Observer:    f.observer,
		Now:         f.observer.now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *fixture) message(t *testing.T, headers ...kafka.Header) *kafka.Message {
	t.Helper()
	value, err := f.codec.EncodeRequest(&schemas.Request{
		RequestID: "r1", Client: schemas.ClientMetadata{ClientID: "web"},
		Operation: &schemas.Login{Email: "ada@example.com", Password: "plum kayak violet thunder"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return &kafka.Message{Key: []byte("ada@example.com"), Value: value, Headers: headers}
}

var correlation = kafka.Header{Key: schemas.HeaderCorrelationID, Value: []byte{1, 2, 3}}

func TestRequestsReplyAlongTheRoute(t *testing.T) {
	f := newFixture(t)
	msg := f.message(t, correlation, kafka.Header{Key: schemas.HeaderReplyTopic, Value: []byte("auth.response.web")},
		kafka.Header{Key: schemas.HeaderReplyPartition, Value: schemas.PartitionHeader(2)})
	if err := f.requests.Handle(context.Background(), msg); err != nil {
		t.Fatal(err)
	}
	if len(f.replies.sent) != 1 {
		t.Fatalf("%d replies, want 1", len(f.replies.sent))
	}
	got := f.replies.sent[0]
	if got.route.Topic != "auth.response.web" || got.route.Partition != 2 || string(got.route.CorrelationID) != "\x01\x02\x03" ||
		string(got.route.Key) != "ada@example.com" {
		t.Errorf("route %+v, want auth.response.web/2, correlation 010203, the request's key", got.route)
	}
	if string(got.value) != "reply" || got.code != domain.CodeUnauthorized {
		t.Errorf("reply %q %q, want the answer as is", got.value, got.code)
	}
	if f.answerer.replyTopic != "auth.response.web" {
		t.Errorf("answered for reply topic %q, want auth.response.web", f.answerer.replyTopic)
	}
}

// TestRequestsPassTheTraceParent: the request's traceparent header reaches
// the application, for the events the request causes; a request without one
// passes none.
func TestRequestsPassTheTraceParent(t *testing.T) {
	const parent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
	tests := []struct {
		name    string
		headers []kafka.Header
		want    string
	}{
		{"with", []kafka.Header{correlation, {Key: "traceparent", Value: []byte(parent)}}, parent},
		{"without", []kafka.Header{correlation}, ""},
		{"twice", []kafka.Header{correlation, {Key: "traceparent", Value: []byte(parent)}, {Key: "traceparent", Value: []byte(parent)}}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			if err := f.requests.Handle(context.Background(), f.message(t, tt.headers...)); err != nil {
				t.Fatal(err)
			}
			if f.answerer.origin.TraceParent != tt.want {
				t.Errorf("trace parent %q, want %q", f.answerer.origin.TraceParent, tt.want)
			}
		})
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
		{"Undecodable", []byte("not avro"), nil, schemas.DeadLetterUndecodable, false},
		{"UndecodableWithCorrelation", []byte("not avro"), []kafka.Header{correlation}, schemas.DeadLetterUndecodable, true},
		{"ForeignReplyTopic", nil, []kafka.Header{{Key: schemas.HeaderReplyTopic, Value: []byte("orders")}}, schemas.DeadLetterReplyTopicNotAllowed, false},
		{"BadReplyPartition", nil, []kafka.Header{{Key: schemas.HeaderReplyPartition, Value: []byte{1}}}, schemas.DeadLetterBadReplyHeaders, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			msg := f.message(t, tt.headers...)
			if tt.value != nil {
				msg.Value = tt.value
			}
			if err := f.requests.Handle(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			if len(f.dead.reasons) != 1 || f.dead.reasons[0] != tt.wantReason {
				t.Errorf("dead letters %v, want [%s]", f.dead.reasons, tt.wantReason)
			}
			if f.answerer.calls != 0 {
				t.Error("an unanswerable request was acted on")
			}
			if got := len(f.replies.sent) == 1; got != tt.wantReply {
				t.Fatalf("replied = %v, want %v", got, tt.wantReply)
			}
			if tt.wantReply {
				resp, err := f.codec.DecodeResponse(context.Background(), f.replies.sent[0].value)
				if err != nil {
					t.Fatal(err)
				}
				if resp.Status != schemas.StatusInvalid || f.replies.sent[0].code != domain.CodeInvalid {
					t.Errorf("reply %s %q, want INVALID", resp.Status, f.replies.sent[0].code)
				}
				if e := resp.Result.(*schemas.Error); e.Message != "request is not a valid AuthRequest" {
					t.Errorf("reply message %q: the decoder's details reached the wire", e.Message)
				}
			}
		})
	}
}

// TestRequestsAtShutdown: when the request has no outcome because the
// worker stops, nothing is sent and the error goes back to the pool, so the
// record is read again.
// TestRequestsUndeliverableReplies: a reply that cannot reach its route
// (no such topic or partition, or refused for good) sends the record to
// the dead-letter topic rather than having the pool retry it for ever,
// which would hold back every later record of its key and partition.
// Found before the request is answered, it is not acted on; found when
// the reply is sent, the request was answered and its outcome stands.
// A route that cannot be checked now (the brokers do not answer) is a
// transient failure: the pool retries the record.
func TestRequestsUndeliverableReplies(t *testing.T) {
	undeliverable := fmt.Errorf("reply topic auth.response.web has no partition 7: %w", schemas.ErrReplyUndeliverable)
	brokersDown := errors.New("metadata request timed out")
	tests := []struct {
		name              string
		checkErr, sendErr error
		wantErr           error
		wantAnswered      bool
		wantDead          []string
	}{
		{"RouteMissingBeforeAnswering", undeliverable, nil, nil, false, []string{schemas.DeadLetterReplyUndeliverable}},
		{"RouteMissingWhenReplying", nil, fmt.Errorf("send reply: %w", undeliverable), nil, true, []string{schemas.DeadLetterReplyUndeliverable}},
		{"RouteUncheckable", brokersDown, nil, brokersDown, false, nil},
		{"SendFailsForNow", nil, brokersDown, brokersDown, true, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.replies.checkErr, f.replies.sendErr = tt.checkErr, tt.sendErr
			msg := f.message(t, correlation, kafka.Header{Key: schemas.HeaderReplyTopic, Value: []byte("auth.response.web")},
				kafka.Header{Key: schemas.HeaderReplyPartition, Value: schemas.PartitionHeader(7)})
			err := f.requests.Handle(context.Background(), msg)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Handle = %v, want %v", err, tt.wantErr)
			}
			if len(f.replies.checked) != 1 || f.replies.checked[0].Topic != "auth.response.web" || f.replies.checked[0].Partition != 7 {
				t.Errorf("routes checked %+v, want the request's one", f.replies.checked)
			}
			if answered := f.answerer.calls == 1; answered != tt.wantAnswered {
				t.Errorf("answered = %v, want %v", answered, tt.wantAnswered)
			}
			if !slices.Equal(f.dead.reasons, tt.wantDead) || !slices.Equal(f.observer.dead, tt.wantDead) {
				t.Errorf("dead letters %q, observed %q; want %q", f.dead.reasons, f.observer.dead, tt.wantDead)
			}
			if len(f.dead.details) == 1 && !strings.Contains(f.dead.details[0], "no partition 7") {
				t.Errorf("dead letter detail %q does not say why", f.dead.details[0])
			}
			if len(f.replies.sent) != 0 || len(f.observer.replied) != 0 {
				t.Errorf("%d replies sent, %d observed; want none", len(f.replies.sent), len(f.observer.replied))
			}
		})
	}
}

func TestRequestsAtShutdown(t *testing.T) {
	f := newFixture(t)
	f.answerer.err = context.Canceled
	err := f.requests.Handle(context.Background(), f.message(t, correlation))
	if !errors.Is(err, context.Canceled) {
		t.Errorf("Handle = %v, want context.Canceled", err)
	}
	if len(f.replies.sent) != 0 {
		t.Errorf("%d replies sent, want none", len(f.replies.sent))
	}
}

func TestNewRequestsChecksRouting(t *testing.T) {
	_, err := consumers.NewRequests(consumers.RequestsDeps{Routing: schemas.ReplyRouting{DefaultTopic: "auth.response", AllowedTopics: []string{"other"}}})
	if err == nil {
		t.Error("NewRequests with a default reply topic outside the allowed ones succeeded")
	}
}

// TestClientBindings: a client id bound to a request topic (which Kafka
// ACLs reserve for its principal) is refused on any other topic, and the
// bound topic takes no other client id: nobody else speaks as that client.
func TestClientBindings(t *testing.T) {
	tests := []struct {
		name      string
		topic     string
		clientID  string
		wantAsked bool
	}{
		{"BoundClientOnItsTopic", "auth.request.web", "web", true},
		{"BoundClientOnSharedTopic", "auth.request", "web", false},
		{"OtherClientOnBoundTopic", "auth.request.web", "billing", false},
		{"UnboundClientOnSharedTopic", "auth.request", "billing", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			requests, err := consumers.NewRequests(consumers.RequestsDeps{
				Codec: f.codec, Answerer: f.answerer, Replies: f.replies, DeadLetters: f.dead,
				Bindings: consumers.ClientBindings{"web": "auth.request.web"},
			})
			if err != nil {
				t.Fatal(err)
			}
			value, err := f.codec.EncodeRequest(&schemas.Request{
				RequestID: "r1", Client: schemas.ClientMetadata{ClientID: tt.clientID},
				Operation: &schemas.Login{Email: "ada@example.com", Password: "plum kayak violet thunder"},
			})
			if err != nil {
				t.Fatal(err)
			}
			topic := tt.topic
			msg := &kafka.Message{TopicPartition: kafka.TopicPartition{Topic: &topic}, Value: value, Headers: []kafka.Header{correlation}}
			if err := requests.Handle(context.Background(), msg); err != nil {
				t.Fatal(err)
			}
			if asked := f.answerer.calls == 1; asked != tt.wantAsked {
				t.Fatalf("answered = %v, want %v", asked, tt.wantAsked)
			}
			if tt.wantAsked {
				return
			}
			resp, err := f.codec.DecodeResponse(context.Background(), f.replies.sent[0].value)
			if err != nil {
				t.Fatal(err)
			}
			e, ok := resp.Result.(*schemas.Error)
			if resp.Status != schemas.StatusInvalid || !ok || e.Field == nil || *e.Field != "client.clientId" || resp.RequestID != "r1" {
				t.Errorf("reply %s %+v for r1, want INVALID on client.clientId", resp.Status, resp.Result)
			}
		})
	}
}
