package schemas

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"path"
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
	// ("invalid", "unauthorized", ...: Status.Code), so clients can branch
	// without decoding the value.
	HeaderError = "auth_error"
)

// Dead-letter headers. The kafka_dlt-* names and encodings are Spring
// Kafka's, so Spring tooling reads our dead letters as its own.
const (
	HeaderDLTOriginalTopic     = "kafka_dlt-original-topic"     // UTF-8
	HeaderDLTOriginalPartition = "kafka_dlt-original-partition" // 4-byte big-endian
	HeaderDLTOriginalOffset    = "kafka_dlt-original-offset"    // 8-byte big-endian
	HeaderDLTOriginalTimestamp = "kafka_dlt-original-timestamp" // 8-byte big-endian, epoch ms
	HeaderDLTExceptionMessage  = "kafka_dlt-exception-message"  // UTF-8, why
	// HeaderDeadLetterReason is a short machine-readable reason, one of the
	// DeadLetter* values.
	HeaderDeadLetterReason = "auth_dlq_reason"
	// HeaderDeadLetterSealed says how a dead letter's key and value are
	// sealed: DeadLetterSealV1. Requests carry passwords, so the worker
	// never writes them to the dead-letter topic in the clear.
	HeaderDeadLetterSealed = "auth_dlq_sealed"
)

// DeadLetterSealV1 is the HeaderDeadLetterSealed value of a dead letter
// whose key and value are sealed (AES-256-GCM, package seal, purpose
// "dead letters") with DeadLetterAD as associated data.
const DeadLetterSealV1 = "v1"

// DeadLetterAD is the associated data that binds a sealed dead letter's
// key or value (part "key" or "value") to the record it came from, as its
// kafka_dlt-original-* headers name it.
func DeadLetterAD(topic string, partition int32, offset int64, part string) []byte {
	ad := binary.BigEndian.AppendUint32([]byte(topic+"\x00"), uint32(partition))
	ad = binary.BigEndian.AppendUint64(ad, uint64(offset))
	return append(ad, part...)
}

// Why a record went to the dead-letter topic: the HeaderDeadLetterReason
// values.
const (
	DeadLetterUndecodable          = "undecodable"
	DeadLetterBadReplyHeaders      = "bad_reply_headers"
	DeadLetterReplyTopicNotAllowed = "reply_topic_not_allowed"
	DeadLetterReplyUndeliverable   = "reply_undeliverable"
)

// DeadLetterReasons returns every HeaderDeadLetterReason value.
func DeadLetterReasons() []string {
	return []string{DeadLetterUndecodable, DeadLetterBadReplyHeaders, DeadLetterReplyTopicNotAllowed, DeadLetterReplyUndeliverable}
}

// Reasons a request cannot be answered. Such a record must not be acted on,
// since its outcome could not be told; it goes to the dead-letter topic.
var (
	ErrReplyTopicNotAllowed = errors.New("reply topic not allowed")
	ErrBadReplyHeaders      = errors.New("malformed reply headers")
	// ErrReplyUndeliverable: the reply's topic or partition does not
	// exist, or the broker refuses the reply for good (too large, not
	// authorised). Found before the request is answered, the record is not
	// acted on; found when the reply is sent, the outcome stands (a stored
	// one is replayed to a retry of the request along a route that works).
	ErrReplyUndeliverable = errors.New("reply undeliverable")
)

// DeadLetterReason returns the HeaderDeadLetterReason value for an error of
// ReplyRouting.Route, or one wrapping ErrReplyUndeliverable.
func DeadLetterReason(err error) string {
	switch {
	case errors.Is(err, ErrReplyTopicNotAllowed):
		return DeadLetterReplyTopicNotAllowed
	case errors.Is(err, ErrReplyUndeliverable):
		return DeadLetterReplyUndeliverable
	}
	return DeadLetterBadReplyHeaders
}

// PartitionAny is Route.Partition when the request named no reply
// partition: the producer picks one. It equals librdkafka's.
const PartitionAny int32 = -1

// Route is where the reply to a request goes.
type Route struct {
	Topic         string
	Partition     int32  // PartitionAny unless the request named one
	CorrelationID []byte // nil when the request carried none
	Key           []byte // the request's key
}

// ReplyRouting says where replies may go.
type ReplyRouting struct {
	// DefaultTopic receives replies to requests without a reply-topic
	// header. Default DefaultReplyTopic.
	DefaultTopic string
	// AllowedTopics are the topics replies may go to, as path.Match
	// patterns ("auth.response", "auth.response.*"). Replies carry tokens,
	// so a request must not steer them to an arbitrary topic. Default: the
	// default topic only.
	AllowedTopics []string
}

// DefaultReplyTopic is ReplyRouting's default topic.
const DefaultReplyTopic = "auth.response"

// WithDefaults returns r with its zero fields set to their defaults.
func (r ReplyRouting) WithDefaults() ReplyRouting {
	if r.DefaultTopic == "" {
		r.DefaultTopic = DefaultReplyTopic
	}
	if len(r.AllowedTopics) == 0 {
		r.AllowedTopics = []string{r.DefaultTopic}
	}
	return r
}

// Validate reports the first setting that cannot work. It expects defaults
// to be set.
func (r ReplyRouting) Validate() error {
	for _, p := range r.AllowedTopics {
		if _, err := path.Match(p, ""); err != nil {
			return fmt.Errorf("reply topic pattern %q: %w", p, err)
		}
	}
	if !r.Allowed(r.DefaultTopic) {
		return fmt.Errorf("default reply topic %q is not in the allowed reply topics", r.DefaultTopic)
	}
	return nil
}

// Allowed reports whether replies may go to topic.
func (r ReplyRouting) Allowed(topic string) bool {
	for _, p := range r.AllowedTopics {
		if ok, _ := path.Match(p, topic); ok {
			return true
		}
	}
	return false
}

// Route reads a request's reply headers (key, value pairs in record order).
// It fails with ErrReplyTopicNotAllowed or ErrBadReplyHeaders; the request
// must then not be acted on.
func (r ReplyRouting) Route(key []byte, headers iter.Seq2[string, []byte]) (Route, error) {
	route := Route{Topic: r.DefaultTopic, Partition: PartitionAny, Key: key}
	var seen [3]bool
	for k, v := range headers {
		var i int
		switch k {
		case HeaderReplyTopic:
			i, route.Topic = 0, string(v)
		case HeaderReplyPartition:
			i = 1
			if len(v) != 4 {
				return Route{}, fmt.Errorf("%w: %s must be 4 bytes, got %d", ErrBadReplyHeaders, k, len(v))
			}
			if route.Partition = int32(binary.BigEndian.Uint32(v)); route.Partition < 0 {
				return Route{}, fmt.Errorf("%w: negative %s", ErrBadReplyHeaders, k)
			}
		case HeaderCorrelationID:
			i, route.CorrelationID = 2, v
		default:
			continue
		}
		if seen[i] {
			return Route{}, fmt.Errorf("%w: %s given twice", ErrBadReplyHeaders, k)
		}
		seen[i] = true
	}
	if !r.Allowed(route.Topic) {
		return Route{}, fmt.Errorf("%w: %q", ErrReplyTopicNotAllowed, route.Topic)
	}
	return route, nil
}

// PartitionHeader encodes a reply partition for HeaderReplyPartition.
func PartitionHeader(partition int32) []byte {
	return binary.BigEndian.AppendUint32(nil, uint32(partition))
}
