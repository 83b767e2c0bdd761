package producers

import (
	"context"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
)

// OutboxPublisher publishes outbox messages for postgres.OutboxRelay: each
// to its topic, to the partition of its key, with its headers in order and
// its creation time as the record's timestamp. The relay sends no two
// messages of one key at once, so it, not the producer, keeps each key's
// order.
type OutboxPublisher struct {
	producer *Producer
}

// NewOutboxPublisher returns an OutboxPublisher sending through producer,
// whose idempotence keeps the broker from writing a record twice when the
// producer retries.
func NewOutboxPublisher(producer *Producer) *OutboxPublisher {
	return &OutboxPublisher{producer: producer}
}

// Publish sends msgs at once and waits until the broker has acknowledged
// each, or until ctx ends. It returns one error per message, in order: nil
// for each the broker acknowledged, CodeUnavailable for one it did not, and
// ctx's error for one still unacknowledged when ctx ended. A nil value or
// header value is published as an empty one, never as null: a null value
// would be a tombstone.
func (o *OutboxPublisher) Publish(ctx context.Context, msgs []domain.OutboxMessage) []error {
	records := make([]*kafka.Message, len(msgs))
	for i, m := range msgs {
		topic := m.Topic
		headers := make([]kafka.Header, len(m.Headers))
		for j, h := range m.Headers {
			headers[j] = kafka.Header{Key: h.Key, Value: nonNil(h.Value)}
		}
		records[i] = &kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
			Key:            m.Key,
			Value:          nonNil(m.Value),
			Headers:        headers,
			Timestamp:      m.CreatedAt,
		}
	}
	errs := o.producer.SendAll(ctx, records)
	for i, err := range errs {
		if err != nil {
			errs[i] = fmt.Errorf("publish outbox message: %w", err)
		}
	}
	return errs
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
