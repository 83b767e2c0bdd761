package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// published is a record of the events topic as a test writes it: an event,
// or (corrupt) an event's headers over a value that is no event.
type published struct {
	id          string // the request id, or "corrupt"; names the record in the output
	partition   int32
	ev          *schemas.Event
	traceparent string
	corrupt     bool
}

const testTraceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"

func str(s string) *string { return &s }

// at is the n-th millisecond of a test's clock.
func at(n int) time.Time {
	return time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC).Add(time.Duration(n) * time.Millisecond)
}

// event is the event of request id, at millisecond n, of user (none when
// ""), from the web client.
func event(n int, id, user string, p schemas.Payload) *schemas.Event {
	ev := &schemas.Event{EventID: "e" + id, OccurredAt: at(n), RequestID: str(id), ClientID: str("web"), Payload: p}
	if user != "" {
		ev.UserID = str(user)
	}
	return ev
}

// tailRecords are what the tail tests publish, in order. Each user's events
// go to a partition of their own, as keying by user id would send them, and
// events of no user to a third, so that offsets are known.
var tailRecords = []published{
	{id: "r-1", partition: 0, traceparent: testTraceparent, ev: func() *schemas.Event {
		ev := event(1, "r-1", "u-ada", &schemas.UserRegistered{Email: "ada@example.com"})
		ev.IP = str("192.0.2.1")
		return ev
	}()},
	{id: "r-2", partition: 0, ev: event(2, "r-2", "u-ada", &schemas.LoginFailed{Reason: schemas.LoginFailureBadCredentials})},
	{id: "r-3", partition: 2, ev: event(3, "r-3", "", &schemas.LoginFailed{Reason: schemas.LoginFailureUnknownAccount})},
	{id: "r-4", partition: 0, ev: event(4, "r-4", "u-ada", &schemas.LoginSucceeded{SessionID: "s-1"})},
	{id: "r-5", partition: 1, ev: event(5, "r-5", "u-bob", &schemas.UserRegistered{Email: "bob@example.com"})},
	{id: "corrupt", partition: 1, corrupt: true, ev: event(6, "r-6", "u-bob", &schemas.AccountLocked{Scope: schemas.LockScopeAll})},
	{id: "r-7", partition: 0, ev: event(7, "r-7", "u-ada", &schemas.SessionRevoked{SessionID: "s-1", Reason: schemas.RevocationLogout})},
	{id: "r-8", partition: 2, ev: event(8, "r-8", "", &schemas.SigningKeyRotated{Kid: "k-2", Algorithm: "EdDSA", SignsFrom: at(60000)})},
}

// tailLines are the lines events tail prints for tailRecords; the corrupt
// record's line starts so, followed by the decoder's error.
var tailLines = map[string]string{
	"r-1":     "2024-05-01T10:00:00.001Z UserRegistered u-ada request=r-1 client=web email=ada@example.com",
	"r-2":     "2024-05-01T10:00:00.002Z LoginFailed u-ada request=r-2 client=web reason=BAD_CREDENTIALS",
	"r-3":     "2024-05-01T10:00:00.003Z LoginFailed - request=r-3 client=web reason=UNKNOWN_ACCOUNT",
	"r-4":     "2024-05-01T10:00:00.004Z LoginSucceeded u-ada request=r-4 client=web sessionId=s-1",
	"r-5":     "2024-05-01T10:00:00.005Z UserRegistered u-bob request=r-5 client=web email=bob@example.com",
	"corrupt": "ERROR partition=1 offset=1 key=u-bob type=AccountLocked: cannot decode the event: ",
	"r-7":     "2024-05-01T10:00:00.007Z SessionRevoked u-ada request=r-7 client=web sessionId=s-1 reason=LOGOUT",
	"r-8":     "2024-05-01T10:00:00.008Z SigningKeyRotated - request=r-8 client=web kid=k-2 algorithm=EdDSA signsFrom=2024-05-01T10:01:00.000Z",
}

// eventsTopic creates a fresh events topic of three partitions and returns
// the broker, the topic and a function that publishes records to it.
func eventsTopic(t *testing.T) (bootstrap, topic string, publish func(...published)) {
	t.Helper()
	bootstrap = testenv.KafkaBootstrap(t)
	topic = testenv.Name(t, "events")
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(admin.Close)
	if err := producers.EnsureTopics(context.Background(), admin, []producers.Topic{{Name: topic, Partitions: 3}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { admin.DeleteTopics(context.Background(), []string{topic}) })
	p, err := producers.NewProducer(producers.Config{BootstrapServers: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	publish = func(records ...published) {
		t.Helper()
		for _, r := range records {
			value := []byte("not an event")
			if !r.corrupt {
				if value, err = codec.EncodeEvent(r.ev); err != nil {
					t.Fatal(err)
				}
			}
			var headers []kafka.Header
			for _, h := range schemas.EventHeaders(r.ev, "authworker-test", r.traceparent) {
				headers = append(headers, kafka.Header{Key: h.Key, Value: h.Value})
			}
			key := r.ev.EventID
			if r.ev.UserID != nil {
				key = *r.ev.UserID
			}
			if err := p.Send(context.Background(), &kafka.Message{
				TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: r.partition},
				Key:            []byte(key), Value: value, Headers: headers, Timestamp: r.ev.OccurredAt,
			}); err != nil {
				t.Fatal(err)
			}
		}
	}
	return bootstrap, topic, publish
}

// tail runs authctl with args, bounded by a minute, and returns its output.
func tail(t *testing.T, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var out bytes.Buffer
	if err := run(ctx, args, nil, &out); err != nil {
		t.Fatalf("run %v: %v", args, err)
	}
	if ctx.Err() != nil {
		t.Errorf("run %v: still tailing after a minute; printed:\n%s", args, out.String())
	}
	return out.String()
}

var requestField = regexp.MustCompile(` request=(\S+)`)

// lineIDs names each printed line by its record's id in tailRecords.
func lineIDs(t *testing.T, out string) []string {
	t.Helper()
	var ids []string
	for line := range strings.Lines(out) {
		switch m := requestField.FindStringSubmatch(line); {
		case strings.HasPrefix(line, "ERROR "):
			ids = append(ids, "corrupt")
		case m != nil:
			ids = append(ids, m[1])
		default:
			t.Errorf("line %q names no record", line)
		}
	}
	return ids
}

// checkOrderPerPartition: the records of each partition come in the order
// they were published.
func checkOrderPerPartition(t *testing.T, ids []string, records []published) {
	t.Helper()
	partition, rank := map[string]int32{}, map[string]int{}
	for i, r := range records {
		partition[r.id], rank[r.id] = r.partition, i
	}
	last := map[int32]int{}
	for _, id := range ids {
		p := partition[id]
		if prev, seen := last[p]; seen && rank[id] < prev {
			t.Errorf("%s printed after a later record of partition %d: %v", id, p, ids)
		}
		last[p] = rank[id]
	}
}

func TestEventsTail(t *testing.T) {
	bootstrap, topic, publish := eventsTopic(t)
	publish(tailRecords...)

	tests := []struct {
		name   string
		global []string // global flags
		args   []string
		want   []string // ids of the records printed, in any order across partitions
	}{
		{"All", nil, nil, []string{"r-1", "r-2", "r-3", "r-4", "r-5", "corrupt", "r-7", "r-8"}},
		{"TypeShort", nil, []string{"-type", "LoginFailed"}, []string{"r-2", "r-3"}},
		{"TypeFull", nil, []string{"-type", "authworker.LoginFailed"}, []string{"r-2", "r-3"}},
		{"TypeList", nil, []string{"-type", "UserRegistered, authworker.SigningKeyRotated"}, []string{"r-1", "r-5", "r-8"}},
		// Filtered on its header, the corrupt record is reported when it
		// matches and, not decoded, goes unnoticed when it does not.
		{"TypeOfCorrupt", nil, []string{"-type", "AccountLocked"}, []string{"corrupt"}},
		{"User", nil, []string{"-user", "u-bob"}, []string{"r-5", "corrupt"}},
		{"UserAndType", nil, []string{"-user", "u-ada", "-type", "LoginFailed,SessionRevoked"}, []string{"r-2", "r-7"}},
		// The wait for a reply does not bound a tail.
		{"NotBoundByTimeout", []string{"-timeout", "1ns"}, []string{"-type", "SessionRevoked"}, []string{"r-7"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := slices.Concat([]string{"-bootstrap", bootstrap}, tt.global,
				[]string{"events", "tail", "-topic", topic, "-from", "beginning", "-max", strconv.Itoa(len(tt.want))}, tt.args)
			out := tail(t, args...)
			ids := lineIDs(t, out)
			if got, want := slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(tt.want)); !slices.Equal(got, want) {
				t.Fatalf("printed %v, want %v; output:\n%s", ids, tt.want, out)
			}
			checkOrderPerPartition(t, ids, tailRecords)
			for line := range strings.Lines(out) {
				line = strings.TrimSuffix(line, "\n")
				id := lineIDs(t, line)[0]
				if want := tailLines[id]; line != want && !(id == "corrupt" && strings.HasPrefix(line, want)) {
					t.Errorf("line of %s:\n got %s\nwant %s", id, line, want)
				}
			}
		})
	}
}

func TestEventsTailJSON(t *testing.T) {
	bootstrap, topic, publish := eventsTopic(t)
	publish(tailRecords...)

	headers := func(id, ceType, ceTime, subject string) string {
		s := fmt.Sprintf(`"ce_specversion":"1.0","ce_id":"e%s","ce_source":"authworker-test","ce_type":"authworker.%s","ce_time":"%s","content-type":"application/avro"`,
			id, ceType, ceTime)
		if subject != "" {
			s += `,"ce_subject":"` + subject + `"`
		}
		return "{" + s + "}"
	}
	want := map[string]string{
		"r-1": `{"partition":0,"offset":0,"key":"u-ada",
			"headers":{"ce_specversion":"1.0","ce_id":"er-1","ce_source":"authworker-test","ce_type":"authworker.UserRegistered",
				"ce_time":"2024-05-01T10:00:00.001Z","ce_subject":"u-ada","content-type":"application/avro","traceparent":"` + testTraceparent + `"},
			"event":{"eventId":"er-1","occurredAt":"2024-05-01T10:00:00.001Z","requestId":"r-1","userId":"u-ada","clientId":"web","ip":"192.0.2.1",
				"type":"UserRegistered","payload":{"email":"ada@example.com"}}}`,
		"r-3": `{"partition":2,"offset":0,"key":"er-3","headers":` + headers("r-3", "LoginFailed", "2024-05-01T10:00:00.003Z", "") + `,
			"event":{"eventId":"er-3","occurredAt":"2024-05-01T10:00:00.003Z","requestId":"r-3","userId":null,"clientId":"web","ip":null,
				"type":"LoginFailed","payload":{"reason":"UNKNOWN_ACCOUNT"}}}`,
		"r-7": `{"partition":0,"offset":3,"key":"u-ada","headers":` + headers("r-7", "SessionRevoked", "2024-05-01T10:00:00.007Z", "u-ada") + `,
			"event":{"eventId":"er-7","occurredAt":"2024-05-01T10:00:00.007Z","requestId":"r-7","userId":"u-ada","clientId":"web","ip":null,
				"type":"SessionRevoked","payload":{"sessionId":"s-1","reason":"LOGOUT"}}}`,
		"r-8": `{"partition":2,"offset":1,"key":"er-8","headers":` + headers("r-8", "SigningKeyRotated", "2024-05-01T10:00:00.008Z", "") + `,
			"event":{"eventId":"er-8","occurredAt":"2024-05-01T10:00:00.008Z","requestId":"r-8","userId":null,"clientId":"web","ip":null,
				"type":"SigningKeyRotated","payload":{"kid":"k-2","algorithm":"EdDSA","signsFrom":"2024-05-01T10:01:00.000Z"}}}`,
		// The error itself is the decoder's, checked apart.
		"corrupt": `{"partition":1,"offset":1,"key":"u-bob","headers":` + headers("r-6", "AccountLocked", "2024-05-01T10:00:00.006Z", "u-bob") + `}`,
	}

	out := tail(t, "-bootstrap", bootstrap, "events", "tail", "-topic", topic, "-from", "beginning",
		"-max", "7", "-type", "UserRegistered,LoginFailed,SessionRevoked,SigningKeyRotated,AccountLocked", "-json")
	seen := map[string]bool{}
	for line := range strings.Lines(out) {
		var got map[string]any
		if err := json.Unmarshal([]byte(line), &got); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		id := "corrupt"
		if ev, ok := got["event"].(map[string]any); ok {
			id, _ = ev["requestId"].(string)
		} else if msg, _ := got["error"].(string); !strings.HasPrefix(msg, "cannot decode the event: ") {
			t.Errorf("record without an event has error %q, want why it cannot be decoded", msg)
		}
		delete(got, "error")
		seen[id] = true
		text, ok := want[id]
		if !ok {
			continue // r-2 and r-5 print like r-1 and r-3
		}
		var w map[string]any
		if err := json.Unmarshal([]byte(text), &w); err != nil {
			t.Fatalf("want of %s: %v", id, err)
		}
		if !reflect.DeepEqual(got, w) {
			t.Errorf("%s:\n got %s\nwant %v", id, line, w)
		}
	}
	for id := range want {
		if !seen[id] {
			t.Errorf("%s not printed; output:\n%s", id, out)
		}
	}
}

// TestEventsTailFromEnd: by default, and with -from end, a tail prints only
// what is published after it started, and an interrupt ends it without an
// error.
func TestEventsTailFromEnd(t *testing.T) {
	bootstrap, topic, publish := eventsTopic(t)
	publish(tailRecords...)

	// start runs a tail and returns once it has fixed where it starts,
	// with a function that waits for its end.
	start := func(t *testing.T, ctx context.Context, args ...string) (wait func() (string, error)) {
		started := make(chan struct{})
		following = func() { close(started) }
		var out bytes.Buffer
		done := make(chan error, 1)
		go func() {
			done <- run(ctx, slices.Concat([]string{"-bootstrap", bootstrap, "events", "tail", "-topic", topic}, args), nil, &out)
		}()
		wait = func() (string, error) {
			err := <-done
			following = func() {}
			return out.String(), err
		}
		select {
		case <-started:
		case err := <-done:
			following = func() {}
			t.Fatalf("the tail ended before it started following: %v; output:\n%s", err, out.String())
		case <-ctx.Done():
			wait()
			t.Fatal("the tail did not start following in a minute")
		}
		return wait
	}

	tests := []struct {
		name string
		args []string
	}{
		{"Default", nil},
		{"End", []string{"-from", "end"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			wait := start(t, ctx, append(tt.args, "-max", "2")...)
			n := 100 * (i + 1)
			fresh := []published{
				{id: "new-" + tt.name + "-1", partition: 0, ev: event(n, "new-"+tt.name+"-1", "u-ada", &schemas.LoginSucceeded{SessionID: "s-2"})},
				{id: "new-" + tt.name + "-2", partition: 2, ev: event(n+1, "new-"+tt.name+"-2", "u-cy", &schemas.UserRegistered{Email: "cy@example.com"})},
			}
			publish(fresh...)
			out, err := wait()
			if err != nil {
				t.Fatal(err)
			}
			if ctx.Err() != nil {
				t.Fatalf("still tailing after a minute; printed:\n%s", out)
			}
			if got, want := slices.Sorted(slices.Values(lineIDs(t, out))), []string{fresh[0].id, fresh[1].id}; !slices.Equal(got, want) {
				t.Errorf("printed %v, want only the events published after the start %v; output:\n%s", got, want, out)
			}
		})
	}

	t.Run("Interrupted", func(t *testing.T) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		interrupt, stop := context.WithCancel(ctx)
		wait := start(t, interrupt)
		stop()
		out, err := wait()
		if err != nil || out != "" {
			t.Errorf("interrupted tail: %v, output %q; want neither", err, out)
		}
	})
}

// TestEventsTailRefusesUnknownType: an unknown -type is refused before the
// tail connects, naming every type the schema carries.
func TestEventsTailRefusesUnknownType(t *testing.T) {
	for _, name := range []string{"Frobnicated", "authworker.Frobnicated", "loginfailed", "LoginFailed,", "Login"} {
		t.Run(name, func(t *testing.T) {
			err := run(context.Background(), []string{"-bootstrap", "127.0.0.1:1", "events", "tail", "-type", name}, nil, &bytes.Buffer{})
			if err == nil || !strings.Contains(err.Error(), "unknown event type") {
				t.Fatalf("-type %s: %v, want unknown event type", name, err)
			}
			for _, p := range schemas.Payloads() {
				if want := strings.TrimPrefix(schemas.EventType(p), "authworker."); !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not list %s: %v", want, err)
				}
			}
		})
	}
}
