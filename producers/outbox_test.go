package producers_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/testenv"
)

// newTopic creates a topic of the test's own, deleted when it ends, and
// returns a producer for the shared broker.
func newTopic(t *testing.T, partitions int) (*producers.Producer, string) {
	t.Helper()
	bootstrap := testenv.KafkaBootstrap(t)
	p, err := producers.NewProducer(producers.Config{BootstrapServers: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	admin, err := p.Admin()
	if err != nil {
		t.Fatal(err)
	}
	topic := testenv.Name(t, "topic")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := producers.EnsureTopics(ctx, admin, []producers.Topic{{Name: topic, Partitions: partitions}}); err != nil {
		admin.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		defer admin.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.DeleteTopics(ctx, []string{topic}); err != nil {
			t.Logf("delete topic %s: %v", topic, err)
		}
	})
	return p, topic
}

// readTopic reads n records of topic from the beginning.
func readTopic(t *testing.T, topic string, n int) []*kafka.Message {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": testenv.KafkaBootstrap(t), "group.id": testenv.Name(t, "reader"),
		"auto.offset.reset": "earliest", "enable.auto.commit": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe(topic, nil); err != nil {
		t.Fatal(err)
	}
	var got []*kafka.Message
	deadline := time.Now().Add(30 * time.Second)
	for len(got) < n && time.Now().Before(deadline) {
		msg, err := c.ReadMessage(time.Second)
		if kerr, ok := errors.AsType[kafka.Error](err); ok && kerr.IsTimeout() {
			continue
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, msg)
	}
	if len(got) < n {
		t.Fatalf("read %d records of %s, want %d", len(got), topic, n)
	}
	return got
}

// TestOutboxPublisher: each message becomes a record of its topic with its
// key, value and headers byte for byte, and its creation time as the
// record's timestamp; nil values go out empty, never as tombstones.
func TestOutboxPublisher(t *testing.T) {
	t.Parallel()
	p, topic := newTopic(t, 3)
	created := time.Date(2026, 5, 6, 7, 8, 9, 123_000_000, time.UTC)
	var msgs []domain.OutboxMessage
	for i := range 5 {
		msgs = append(msgs, domain.OutboxMessage{
			Topic: topic,
			Key:   fmt.Appendf(nil, "user-%d", i),
			Value: fmt.Appendf(nil, "code %06d", i),
			Headers: []domain.MessageHeader{
				{Key: "type", Value: []byte("login-code")},
				{Key: "bin", Value: []byte{0, 0xff, byte(i)}},
				{Key: "type", Value: []byte("again")},
			},
			CreatedAt: created.Add(time.Duration(i) * time.Millisecond),
		})
	}
	msgs[4].Value, msgs[4].Headers = nil, []domain.MessageHeader{{Key: "empty"}}

	errs := producers.NewOutboxPublisher(p).Publish(context.Background(), msgs)
	for i, err := range errs {
		if err != nil {
			t.Errorf("Publish: message %d: %v", i, err)
		}
	}
	if len(errs) != len(msgs) {
		t.Fatalf("Publish returned %d results for %d messages", len(errs), len(msgs))
	}

	byKey := map[string]*kafka.Message{}
	for _, r := range readTopic(t, topic, len(msgs)) {
		byKey[string(r.Key)] = r
	}
	for i, m := range msgs {
		r := byKey[string(m.Key)]
		if r == nil {
			t.Errorf("message %d (key %s) was not published", i, m.Key)
			continue
		}
		if !bytes.Equal(r.Value, m.Value) || r.Value == nil {
			t.Errorf("message %d: value %q (nil %v), want %q, never nil", i, r.Value, r.Value == nil, m.Value)
		}
		if !r.Timestamp.Equal(m.CreatedAt) {
			t.Errorf("message %d: timestamp %v, want its creation time %v", i, r.Timestamp, m.CreatedAt)
		}
		if len(r.Headers) != len(m.Headers) {
			t.Errorf("message %d: headers %v, want %v", i, r.Headers, m.Headers)
			continue
		}
		for j, h := range m.Headers {
			if got := r.Headers[j]; got.Key != h.Key || !bytes.Equal(got.Value, h.Value) || got.Value == nil {
				t.Errorf("message %d: header %d = %v, want %s=%q, never null", i, j, got, h.Key, h.Value)
			}
		}
	}
}

// TestOutboxPublisherReportsEachMessage: a message the producer refuses
// fails alone; the others of the call are still published.
func TestOutboxPublisherReportsEachMessage(t *testing.T) {
	t.Parallel()
	p, topic := newTopic(t, 1)
	msg := func(key string, size int) domain.OutboxMessage {
		return domain.OutboxMessage{Topic: topic, Key: []byte(key), Value: bytes.Repeat([]byte("v"), size), CreatedAt: time.Now()}
	}
	// Over the producer's message.max.bytes (1 MB): refused before sending.
	msgs := []domain.OutboxMessage{msg("a", 10), msg("b", 2<<20), msg("c", 10)}
	errs := producers.NewOutboxPublisher(p).Publish(context.Background(), msgs)
	if len(errs) != 3 || errs[0] != nil || errs[1] == nil || errs[2] != nil {
		t.Fatalf("Publish = %v, want only the oversized message to fail", errs)
	}
	got := readTopic(t, topic, 2)
	if string(got[0].Key) != "a" || string(got[1].Key) != "c" {
		t.Errorf("published keys %q, %q; want a, c", got[0].Key, got[1].Key)
	}
}

// TestOutboxPublisherCanceled: when the caller gives up, every message not
// yet acknowledged fails with the context's error.
func TestOutboxPublisherCanceled(t *testing.T) {
	t.Parallel()
	p, topic := newTopic(t, 1)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	msgs := []domain.OutboxMessage{{Topic: topic, Key: []byte("a"), CreatedAt: time.Now()}}
	errs := producers.NewOutboxPublisher(p).Publish(ctx, msgs)
	if len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Errorf("Publish with a cancelled context = %v, want context.Canceled", errs)
	}
}
