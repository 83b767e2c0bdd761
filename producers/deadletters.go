package producers

import (
	"context"
	"encoding/binary"
	"fmt"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/schemas"
)

// Sealer encrypts dead letters; seal.Box implements it.
type Sealer interface {
	Seal(plaintext, ad []byte) []byte
}

// DeadLetters sends records that cannot be answered to the dead-letter
// topic, sealed, with headers that say where they came from and why.
// Requests carry passwords: their key (the e-mail address) and value are
// sealed under the key-encryption key, so the dead-letter topic holds no
// secret in the clear; `authctl dlq` opens them for an operator.
type DeadLetters struct {
	producer *Producer
	topic    string
	sealer   Sealer
}

// NewDeadLetters returns DeadLetters producing to topic, sealing with
// sealer.
func NewDeadLetters(producer *Producer, topic string, sealer Sealer) *DeadLetters {
	return &DeadLetters{producer: producer, topic: topic, sealer: sealer}
}

// Send copies msg to the dead-letter topic, its key and value sealed, and
// waits for the broker. reason is one of the schemas.DeadLetter* values;
// detail must not contain anything from the record's value.
func (d *DeadLetters) Send(ctx context.Context, msg *kafka.Message, reason, detail string) error {
	var partition [4]byte
	binary.BigEndian.PutUint32(partition[:], uint32(msg.TopicPartition.Partition))
	var offset, timestamp [8]byte
	binary.BigEndian.PutUint64(offset[:], uint64(msg.TopicPartition.Offset))
	binary.BigEndian.PutUint64(timestamp[:], uint64(msg.Timestamp.UnixMilli()))

	headers := make([]kafka.Header, 0, len(msg.Headers)+6)
	headers = append(headers, msg.Headers...)
	headers = append(headers,
		kafka.Header{Key: schemas.HeaderDLTOriginalTopic, Value: []byte(topicOf(msg.TopicPartition))},
		kafka.Header{Key: schemas.HeaderDLTOriginalPartition, Value: partition[:]},
		kafka.Header{Key: schemas.HeaderDLTOriginalOffset, Value: offset[:]},
		kafka.Header{Key: schemas.HeaderDLTOriginalTimestamp, Value: timestamp[:]},
		kafka.Header{Key: schemas.HeaderDLTExceptionMessage, Value: []byte(detail)},
		kafka.Header{Key: schemas.HeaderDeadLetterReason, Value: []byte(reason)},
		kafka.Header{Key: schemas.HeaderDeadLetterSealed, Value: []byte(schemas.DeadLetterSealV1)},
	)
	origin := func(part string) []byte {
		return schemas.DeadLetterAD(topicOf(msg.TopicPartition), msg.TopicPartition.Partition, int64(msg.TopicPartition.Offset), part)
	}
	topic := d.topic
	err := d.producer.Send(ctx, &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Key:            d.sealer.Seal(msg.Key, origin("key")),
		Value:          d.sealer.Seal(msg.Value, origin("value")),
		Headers:        headers,
	})
	if err != nil {
		return fmt.Errorf("send dead letter: %w", err)
	}
	return nil
}
