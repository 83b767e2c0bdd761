package producers

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"path"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
)

// Request/reply headers, as Spring Kafka's ReplyingKafkaTemplate writes and
// reads them, so that a Spring client calls the worker unchanged.
const (
	// HeaderReplyTopic names the topic to reply on (UTF-8 bytes).
	HeaderReplyTopic = "kafka_replyTopic"
	// HeaderReplyPartition, when present, is the partition to reply on: a
	// 4-byte big-endian integer.
	HeaderReplyPartition = "kafka_replyPartition"
	// HeaderCorrelationID is opaque bytes, copied from request to reply
	// byte for byte.
	HeaderCorrelationID = "kafka_correlationId"
	// HeaderError is set on replies that carry an error, to the error code
	// ("invalid", "unauthorized", ...), so clients can branch without
	// decoding the value.
	HeaderError = "auth_error"
)

// Reasons a request cannot be answered. The record goes to the dead-letter
// topic instead.
var (
	ErrReplyTopicNotAllowed = errors.New("reply topic not allowed")
	ErrBadReplyHeaders      = errors.New("malformed reply headers")
)

// ReplyConfig configures Replies.
type ReplyConfig struct {
	// DefaultTopic receives replies to requests without a reply-topic
	// header. Default "auth.response".
	DefaultTopic string
	// AllowedTopics are the topics replies may go to, as path.Match
	// patterns ("auth.response", "auth.response.*"). Replies carry tokens,
	// so a request must not steer them to an arbitrary topic. Default: the
	// default topic only.
	AllowedTopics []string
}

func (c *ReplyConfig) setDefaults() {
	if c.DefaultTopic == "" {
		c.DefaultTopic = "auth.response"
	}
	if len(c.AllowedTopics) == 0 {
		c.AllowedTopics = []string{c.DefaultTopic}
	}
}

// Validate reports the first setting that cannot work.
func (c ReplyConfig) Validate() error {
	for _, p := range c.AllowedTopics {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("reply topic pattern %q: %w", p, err)
		}
	}
	if !matchAny(c.AllowedTopics, c.DefaultTopic) {
		return fmt.Errorf("default reply topic %q is not in the allowed reply topics", c.DefaultTopic)
	}
	return nil
}

func matchAny(patterns []string, topic string) bool {
	for _, p := range patterns {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// Replies sends correlated replies.
type Replies struct {
	producer *Producer
	cfg      ReplyConfig
}

// NewReplies returns Replies sending through producer.
func NewReplies(producer *Producer, cfg ReplyConfig) (*Replies, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Replies{producer: producer, cfg: cfg}, nil
}

// Route is where a reply goes.
type Route struct {
	Topic         string
	Partition     int32 // kafka.PartitionAny unless the request named one
	CorrelationID []byte
	Key           []byte
}

// RouteFor reads a request's reply headers. It fails with
// ErrReplyTopicNotAllowed or ErrBadReplyHeaders; such a request must not be
// acted on, since its outcome could not be told.
func (r *Replies) RouteFor(request *kafka.Message) (Route, error) {
	route := Route{Topic: r.cfg.DefaultTopic, Partition: kafka.PartitionAny, Key: request.Key}
	seen := map[string]bool{}
	for _, h := range request.Headers {
		switch h.Key {
		case HeaderReplyTopic, HeaderReplyPartition, HeaderCorrelationID:
			if seen[h.Key] {
				return Route{}, fmt.Errorf("%w: %s given twice", ErrBadReplyHeaders, h.Key)
			}
			seen[h.Key] = true
		}
		switch h.Key {
		case HeaderReplyTopic:
			route.Topic = string(h.Value)
		case HeaderReplyPartition:
			if len(h.Value) != 4 {
				return Route{}, fmt.Errorf("%w: %s must be 4 bytes, got %d", ErrBadReplyHeaders, h.Key, len(h.Value))
			}
			p := int32(binary.BigEndian.Uint32(h.Value))
			if p < 0 {
				return Route{}, fmt.Errorf("%w: negative %s", ErrBadReplyHeaders, h.Key)
			}
			route.Partition = p
		case HeaderCorrelationID:
			route.CorrelationID = h.Value
		}
	}
	if !matchAny(r.cfg.AllowedTopics, route.Topic) {
		return Route{}, fmt.Errorf("%w: %q", ErrReplyTopicNotAllowed, route.Topic)
	}
	return route, nil
}

// Send produces a reply along route and waits for the broker. code is the
// error code of a failed request, "" for success.
func (r *Replies) Send(ctx context.Context, route Route, code domain.Code, value []byte) error {
	topic := route.Topic
	msg := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: route.Partition},
		Key:            route.Key,
		Value:          value,
	}
	if route.CorrelationID != nil {
		msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderCorrelationID, Value: route.CorrelationID})
	}
	if code != "" {
		msg.Headers = append(msg.Headers, kafka.Header{Key: HeaderError, Value: []byte(code)})
	}
	if err := r.producer.Send(ctx, msg); err != nil {
		return fmt.Errorf("send reply: %w", err)
	}
	return nil
}
