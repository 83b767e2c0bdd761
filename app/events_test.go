package app_test

import (
	"context"
	"reflect"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/tokens"
)

const traceParent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

// publishedEvent is an outbox message for the events topic, decoded.
type publishedEvent struct {
	msg     domain.OutboxMessage
	event   *schemas.Event
	headers map[string]string
}

// events returns the events committed to f's outbox, decoded.
func (f *fixture) events(t *testing.T) []publishedEvent {
	t.Helper()
	var out []publishedEvent
	for _, m := range f.outbox.Messages() {
		if m.Topic != app.DefaultEventsTopic {
			continue
		}
		ev, err := f.codec.DecodeEvent(context.Background(), m.Value)
		if err != nil {
			t.Fatalf("decode event: %v", err)
		}
		headers := map[string]string{}
		for _, h := range m.Headers {
			headers[h.Key] = string(h.Value)
		}
		out = append(out, publishedEvent{msg: m, event: ev, headers: headers})
	}
	return out
}

// payloadTypes names the payloads of events, in order.
func payloadTypes(events []publishedEvent) []string {
	names := []string{}
	for _, e := range events {
		names = append(names, reflect.TypeOf(e.event.Payload).Elem().Name())
	}
	return names
}

// TestEventsCommitWithTheOutcome: the events a request causes are published
// if and only if its outcome is stored, once, however often the request is
// delivered or its transaction retried.
func TestEventsCommitWithTheOutcome(t *testing.T) {
	wrong := "not the password at all"
	tests := []struct {
		name string
		// run answers requests on a fresh fixture; ada@example.com has an
		// account.
		run  func(t *testing.T, f *fixture, s *app.Service)
		want []string
	}{
		{"Registered", func(t *testing.T, f *fixture, s *app.Service) {
			answer(t, s, request("r1", registerOp("bob@example.com", password)))
		}, []string{"UserRegistered"}},
		{"RedeliveredPublishesNothingMore", func(t *testing.T, f *fixture, s *app.Service) {
			req := request("r1", registerOp("bob@example.com", password))
			answer(t, s, req)
			answer(t, s, req)
		}, []string{"UserRegistered"}},
		{"RefusedLoginWithItsStoredOutcome", func(t *testing.T, f *fixture, s *app.Service) {
			req := request("r1", loginOp("ada@example.com", wrong))
			answer(t, s, req)
			answer(t, s, req)
		}, []string{"LoginFailed"}},
		{"RefusedLoginWhenTheStoreBlinks", func(t *testing.T, f *fixture, s *app.Service) {
			f.outcomes.saveFails = 1
			answer(t, s, request("r1", loginOp("ada@example.com", wrong)))
		}, []string{"LoginFailed"}},
		{"LoginSucceeded", func(t *testing.T, f *fixture, s *app.Service) {
			answer(t, s, request("r1", loginOp("ada@example.com", password)))
		}, []string{"LoginSucceeded"}},
		{"ConcurrentDeliveries", func(t *testing.T, f *fixture, s *app.Service) {
			req := request("r1", registerOp("bob@example.com", password))
			var wg sync.WaitGroup
			for range 4 {
				wg.Go(func() { answer(t, s, req) })
			}
			wg.Wait()
		}, []string{"UserRegistered"}},
		{"NoOutcomeNoEvent", func(t *testing.T, f *fixture, s *app.Service) {
			f.outcomes.saveFails = 1000
			req := request("r1", registerOp("bob@example.com", password))
			deadline := time.Now().Add(300 * time.Millisecond)
			req.Deadline = &deadline
			rep := answer(t, s, req)
			if rep.Code != domain.CodeDeadlineExceeded && rep.Code != domain.CodeUnavailable {
				t.Fatalf("code %q, want no outcome", rep.Code)
			}
		}, []string{}},
		{"ReadOnlyOperation", func(t *testing.T, f *fixture, s *app.Service) {
			answer(t, s, request("r1", &schemas.Introspect{Token: "not a token"}))
		}, []string{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t)
			f.register(t, "ada@example.com")
			tt.run(t, f, f.service(t))
			if got := payloadTypes(f.events(t)); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("events %v, want %v", got, tt.want)
			}
		})
	}
}

func answer(t *testing.T, s *app.Service, req *schemas.Request) app.Reply {
	t.Helper()
	rep, err := s.Answer(context.Background(), req, origin)
	if err != nil {
		t.Error(err)
	}
	return rep
}

// TestEventRecord: an event names the request that caused it, carries the
// CloudEvents headers and the request's trace, and is keyed by its user, so
// that one user's events stay in order; an event that concerns no account
// is keyed by its own id.
func TestEventRecord(t *testing.T) {
	f := newFixture(t)
	s := f.service(t)
	reg := withClient(request("r1", registerOp("Bob@Example.com", password)), "192.0.2.7", "")
	rep, err := s.Answer(context.Background(), reg, app.Origin{ReplyTopic: "auth.response", TraceParent: traceParent})
	if err != nil || rep.Code != "" {
		t.Fatalf("register: %v %q", err, rep.Code)
	}
	userID := f.decode(t, rep).Result.(*schemas.RegisterResult).UserID
	unknown := request("r2", loginOp("nobody@example.com", password))
	if _, err := s.Answer(context.Background(), unknown, app.Origin{ReplyTopic: "auth.response", TraceParent: "not a trace"}); err != nil {
		t.Fatal(err)
	}

	events := f.events(t)
	if len(events) != 2 {
		t.Fatalf("%d events, want 2", len(events))
	}
	registered, failed := events[0], events[1]
	ev := registered.event
	if ev.RequestID == nil || *ev.RequestID != "r1" || ev.ClientID == nil || *ev.ClientID != "web" ||
		ev.IP == nil || *ev.IP != "192.0.2.7" || ev.UserID == nil || *ev.UserID != userID {
		t.Errorf("registered event %+v, want request r1 of web from 192.0.2.7 about %s", ev, userID)
	}
	if p, ok := ev.Payload.(*schemas.UserRegistered); !ok || p.Email != "bob@example.com" {
		t.Errorf("payload %+v, want the normalised address", ev.Payload)
	}
	if string(registered.msg.Key) != userID {
		t.Errorf("key %q, want the user id", registered.msg.Key)
	}
	wantHeaders := map[string]string{
		"ce_specversion": "1.0", "ce_id": ev.EventID, "ce_source": "https://auth.test", "ce_type": "authworker.UserRegistered",
		"ce_time": ev.OccurredAt.UTC().Format("2006-01-02T15:04:05.000Z07:00"), "ce_subject": userID,
		"content-type": "application/avro", "traceparent": traceParent,
	}
	if !reflect.DeepEqual(registered.headers, wantHeaders) {
		t.Errorf("headers %v, want %v", registered.headers, wantHeaders)
	}

	if p, ok := failed.event.Payload.(*schemas.LoginFailed); !ok || p.Reason != schemas.LoginFailureUnknownAccount {
		t.Errorf("payload %+v, want LoginFailed UNKNOWN_ACCOUNT", failed.event.Payload)
	}
	if failed.event.UserID != nil {
		t.Errorf("a login for an unknown address names user %q", *failed.event.UserID)
	}
	if string(failed.msg.Key) != failed.event.EventID {
		t.Errorf("key %q, want the event's own id %q", failed.msg.Key, failed.event.EventID)
	}
	if _, ok := failed.headers["traceparent"]; ok {
		t.Error("an invalid traceparent is passed on")
	}
	if _, ok := failed.headers["ce_subject"]; ok {
		t.Error("an event about no account has a subject")
	}
	if registered.event.EventID == failed.event.EventID {
		t.Error("two events share an id")
	}
}

// TestKeyRotatedEvent: a key the manager creates is announced on the events
// topic, with its kid, algorithm and start, and nothing of a request.
func TestKeyRotatedEvent(t *testing.T) {
	f := newFixture(t)
	keyEvents, err := app.NewKeyEvents(f.codec, f.outbox, sequentialIDs(), f.cfg)
	if err != nil {
		t.Fatal(err)
	}
	keys, err := tokens.NewManager(inmem.NewSigningKeyRepository(), tokens.Config{KeyEncryptionKey: kek, OnKeyCreated: keyEvents.KeyCreated})
	if err != nil {
		t.Fatal(err)
	}
	created, err := keys.Rotate(context.Background(), tokens.Scheduled)
	if err != nil || len(created) != 1 {
		t.Fatalf("Rotate = %v, %v; want one key", created, err)
	}
	events := f.events(t)
	if got := payloadTypes(events); !reflect.DeepEqual(got, []string{"SigningKeyRotated"}) {
		t.Fatalf("events = %v, want one SigningKeyRotated", got)
	}
	e := events[0]
	want := &schemas.SigningKeyRotated{Kid: created[0].ID, Algorithm: tokens.DefaultAlgorithm, SignsFrom: created[0].SignFrom}
	if got := e.event.Payload.(*schemas.SigningKeyRotated); !got.SignsFrom.Equal(want.SignsFrom) || got.Kid != want.Kid || got.Algorithm != want.Algorithm {
		t.Errorf("payload = %+v, want %+v", got, want)
	}
	if e.event.UserID != nil || e.event.RequestID != nil || e.event.ClientID != nil || e.event.IP != nil {
		t.Errorf("event = %+v, want no user or request", e.event)
	}
	if string(e.msg.Key) != e.event.EventID {
		t.Errorf("key = %q, want the event id %q", e.msg.Key, e.event.EventID)
	}
	if e.headers["ce_type"] != "authworker.SigningKeyRotated" || e.headers["ce_subject"] != "" {
		t.Errorf("headers = %v, want the type and no subject", e.headers)
	}
}
