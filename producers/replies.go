package producers

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// Replies sends correlated replies.
type Replies struct {
	producer *Producer
}

// NewReplies returns Replies sending through producer.
func NewReplies(producer *Producer) *Replies {
	return &Replies{producer: producer}
}

// Send produces a reply along route and waits for the broker. code is the
// error code of a failed request, "" for success; it goes in the auth_error
// header.
func (r *Replies) Send(ctx context.Context, route schemas.Route, code domain.Code, value []byte) error {
	topic := route.Topic
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: route.Partition},
		Key:            route.Key,
		Value:          value,
	}
	if route.CorrelationID != nil {
		msg.Headers = append(msg.Headers, kafka.Header{Key: schemas.HeaderCorrelationID, Value: route.CorrelationID})
	}
	if code != "" {
		msg.Headers = append(msg.Headers, kafka.Header{Key: schemas.HeaderError, Value: []byte(code)})
	}
	if err := r.producer.Send(ctx, msg); err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	return nil
}
