package main

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/seal"
)

// deadLetter is one dead letter as `authctl dlq` prints it.
type deadLetter struct {
	Partition         int32           `json:"partition"`
	Offset            int64           `json:"offset"`
	Reason            string          `json:"reason"`
	Detail            string          `json:"detail"`
	OriginalTopic     string          `json:"originalTopic"`
	OriginalPartition int32           `json:"originalPartition"`
	OriginalOffset    int64           `json:"originalOffset"`
	OriginalTime      time.Time       `json:"originalTime"`
	Key               string          `json:"key"`
	Request           *printedRequest `json:"request,omitempty"`
	// Value is the record's value, base64, when it is not a request, or
	// when -raw asks for it (a request's value holds its password).
	Value string `json:"value,omitempty"`
	Error string `json:"error,omitempty"`
}

// printedRequest is a decoded request without its secrets.
type printedRequest struct {
	RequestID string     `json:"requestId"`
	ClientID  string     `json:"clientId"`
	Deadline  *time.Time `json:"deadline,omitempty"`
	Operation string     `json:"operation"` // its String form: passwords REDACTED
}

// dlq prints the dead letters of the dead-letter topic, opened with any of
// the key-encryption keys, one JSON object per line, oldest first per
// partition.
func dlq(e *env, args []string) error {
	ctx, bootstrap, stdout := e.ctx, e.bootstrap, e.stdout
	fs := flag.NewFlagSet("dlq", flag.ContinueOnError)
	topic := fs.String("topic", getenv("AUTH_DLQ_TOPIC", "auth.request.dlq"), "dead-letter topic")
	limit := fs.Int("max", 100, "print at most this many dead letters")
	raw := fs.Bool("raw", false, "also print each value in base64, passwords included")
	if err := fs.Parse(args); err != nil {
		return err
	}
	keks, err := keyEncryptionKeys()
	if err != nil {
		return fmt.Errorf("dlq: %w", err)
	}
	box, err := seal.NewBox(keks[0], "dead letters", keks[1:]...)
	if err != nil {
		return err
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		return err
	}
	return readTopic(ctx, bootstrap, *topic, *limit, func(m *kafka.Message) error {
		return printJSONLine(stdout, openDeadLetter(ctx, box, codec, m, *raw))
	})
}

// openDeadLetter opens and decodes one dead letter; what fails is said in
// its Error.
func openDeadLetter(ctx context.Context, box *seal.Box, codec *schemas.Codec, m *kafka.Message, raw bool) deadLetter {
	d := deadLetter{Partition: m.TopicPartition.Partition, Offset: int64(m.TopicPartition.Offset)}
	var timestamp int64
	for _, h := range m.Headers {
		switch h.Key {
		case schemas.HeaderDeadLetterReason:
			d.Reason = string(h.Value)
		case schemas.HeaderDLTExceptionMessage:
			d.Detail = string(h.Value)
		case schemas.HeaderDLTOriginalTopic:
			d.OriginalTopic = string(h.Value)
		case schemas.HeaderDLTOriginalPartition:
			if len(h.Value) == 4 {
				d.OriginalPartition = int32(binary.BigEndian.Uint32(h.Value))
			}
		case schemas.HeaderDLTOriginalOffset:
			if len(h.Value) == 8 {
				d.OriginalOffset = int64(binary.BigEndian.Uint64(h.Value))
			}
		case schemas.HeaderDLTOriginalTimestamp:
			if len(h.Value) == 8 {
				timestamp = int64(binary.BigEndian.Uint64(h.Value))
			}
		}
	}
	d.OriginalTime = time.UnixMilli(timestamp).UTC()
	ad := func(part string) []byte {
		return schemas.DeadLetterAD(d.OriginalTopic, d.OriginalPartition, d.OriginalOffset, part)
	}
	key, err := box.Open(m.Key, ad("key"))
	if err != nil {
		d.Error = "cannot open: wrong key-encryption key, or not a sealed dead letter"
		return d
	}
	value, err := box.Open(m.Value, ad("value"))
	if err != nil {
		d.Error = "cannot open: wrong key-encryption key, or not a sealed dead letter"
		return d
	}
	d.Key = string(key)
	if raw {
		d.Value = base64.StdEncoding.EncodeToString(value)
	}
	req, err := codec.DecodeRequest(ctx, value)
	if err != nil {
		d.Value = base64.StdEncoding.EncodeToString(value)
		return d
	}
	d.Request = &printedRequest{
		RequestID: req.RequestID, ClientID: req.Client.ClientID, Deadline: req.Deadline,
		Operation: fmt.Sprint(req.Operation),
	}
	return d
}

// readTopic calls fn for the records of every partition of topic, from the
// oldest kept to the newest at the time it starts, up to limit records.
func readTopic(ctx context.Context, bootstrap, topic string, limit int, fn func(*kafka.Message) error) error {
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": "authctl", "enable.auto.commit": false,
	})
	if err != nil {
		return err
	}
	defer c.Close()
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		return fmt.Errorf("topic %s: %w", topic, err)
	}
	t, ok := md.Topics[topic]
	if !ok || t.Error.Code() != kafka.ErrNoError {
		return fmt.Errorf("topic %s does not exist", topic)
	}
	var assignment []kafka.TopicPartition
	remaining := map[int32]int64{}
	for _, p := range t.Partitions {
		low, high, err := c.QueryWatermarkOffsets(topic, p.ID, 10000)
		if err != nil {
			return fmt.Errorf("topic %s partition %d: %w", topic, p.ID, err)
		}
		if high > low {
			assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.Offset(low)})
			remaining[p.ID] = high
		}
	}
	if err := c.Assign(assignment); err != nil {
		return err
	}
	for n := 0; len(remaining) > 0 && n < limit; {
		if err := ctx.Err(); err != nil {
			return err
		}
		m, err := c.ReadMessage(100 * time.Millisecond)
		if err != nil {
			if kerr, ok := errors.AsType[kafka.Error](err); ok && kerr.IsTimeout() {
				continue
			}
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		n++
		if int64(m.TopicPartition.Offset)+1 >= remaining[m.TopicPartition.Partition] {
			delete(remaining, m.TopicPartition.Partition)
		}
	}
	return nil
}
