package schemas_test

import (
	"context"
	"log"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/schemas"
)

// A stream processor that watches failed logins on auth.events: it routes
// on the ce_type header without decoding, decodes what it wants, and
// deduplicates on the event id, since delivery is at least once. (It needs
// a broker, so it is compiled, not run.)
func ExampleCodec_DecodeEvent() {
	ctx := context.Background()
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		log.Fatal(err)
	}
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": "kafka:9092", "group.id": "fraud-detector", "auto.offset.reset": "earliest",
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	if err := c.Subscribe("auth.events", nil); err != nil {
		log.Fatal(err)
	}
	seen := map[string]bool{} // a real processor keeps this in its own store
	for {
		m, err := c.ReadMessage(-1)
		if err != nil {
			continue
		}
		if header(m, schemas.HeaderCEType) != schemas.EventTypePrefix+"LoginFailed" {
			continue // routed on the header, not decoded
		}
		ev, err := codec.DecodeEvent(ctx, m.Value)
		if err != nil || seen[ev.EventID] {
			continue
		}
		seen[ev.EventID] = true
		failed := ev.Payload.(*schemas.LoginFailed)
		log.Printf("login failed for user %v from %v: %s", deref(ev.UserID), deref(ev.IP), failed.Reason)
	}
}

func header(m *kafka.Message, key string) string {
	for _, h := range m.Headers {
		if h.Key == key {
			return string(h.Value)
		}
	}
	return ""
}

func deref(s *string) string {
	if s == nil {
		return "-"
	}
	return *s
}
