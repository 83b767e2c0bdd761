package producers

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// How long Replies trusts what it learnt of a reply topic. A topic found
// missing is asked about again after DefaultMissingTopicTTL, so a service
// whose reply topic is created after its first request waits at most that
// long; one found is asked about again after DefaultTopicTTL, so
// partitions added to it are used after at most that long.
const (
	DefaultTopicTTL        = 30 * time.Second
	DefaultMissingTopicTTL = 5 * time.Second
)

// maxTopicLookup bounds a metadata request of Deliverable.
const maxTopicLookup = 5 * time.Second

// maxKnownTopics bounds what Replies remembers of reply topics: the names
// come from requests, which anyone allowed to produce them may invent.
const maxKnownTopics = 4096

// Replies sends correlated replies.
type Replies struct {
	producer   *Producer
	ttl        time.Duration
	missingTTL time.Duration
	now        func() time.Time

	mu    sync.Mutex
	known map[string]replyTopic
}

// replyTopic is what Replies learnt of a topic: its partition count, 0 when
// it does not exist, and when.
type replyTopic struct {
	partitions int32
	checked    time.Time
}

// RepliesOption configures Replies.
type RepliesOption func(*Replies)

// WithMissingTopicTTL sets how long a topic found missing is taken to be
// so. Default DefaultMissingTopicTTL.
func WithMissingTopicTTL(ttl time.Duration) RepliesOption {
	return func(r *Replies) { r.missingTTL = ttl }
}

// NewReplies returns Replies sending through producer.
func NewReplies(producer *Producer, opts ...RepliesOption) *Replies {
	r := &Replies{
		producer:   producer,
		ttl:        DefaultTopicTTL,
		missingTTL: DefaultMissingTopicTTL,
		now:        time.Now,
		known:      make(map[string]replyTopic),
	}
	for _, opt := range opts {
		opt(r)
	}
	return r
}

// Deliverable reports whether a reply can go along route: nil when its
// topic exists and has its partition, an error wrapping
// schemas.ErrReplyUndeliverable when not, and another error when the
// brokers do not answer. What it learns of a topic it keeps for
// DefaultTopicTTL (DefaultMissingTopicTTL for a missing one), so that
// most calls ask the brokers nothing.
func (r *Replies) Deliverable(ctx context.Context, route schemas.Route) error {
	t, err := r.lookup(ctx, route.Topic)
	if err != nil {
		return err
	}
	switch {
	case t.partitions == 0:
		return fmt.Errorf("reply topic %q does not exist: %w", route.Topic, schemas.ErrReplyUndeliverable)
	case route.Partition != schemas.PartitionAny && route.Partition >= t.partitions:
		return fmt.Errorf("reply topic %q has no partition %d (it has %d): %w", route.Topic, route.Partition, t.partitions, schemas.ErrReplyUndeliverable)
	}
	return nil
}

// lookup returns what is known of topic, asking the brokers when it is
// not known or no longer trusted.
func (r *Replies) lookup(ctx context.Context, topic string) (replyTopic, error) {
	now := r.now()
	r.mu.Lock()
	t, ok := r.known[topic]
	r.mu.Unlock()
	if ok && now.Sub(t.checked) < r.trust(t) {
		return t, nil
	}
	timeout := maxTopicLookup
	if d, ok := ctx.Deadline(); ok {
		timeout = min(timeout, time.Until(d))
	}
	if timeout <= 0 {
		return replyTopic{}, context.DeadlineExceeded
	}
	md, err := r.producer.p.GetMetadata(&topic, false, int(timeout.Milliseconds()))
	if err != nil {
		return replyTopic{}, domain.Unavailable("kafka", fmt.Errorf("look up reply topic %q: %w", topic, err))
	}
	tm, ok := md.Topics[topic]
	if !ok {
		return replyTopic{}, domain.Unavailable("kafka", fmt.Errorf("look up reply topic %q: not in the brokers' answer", topic))
	}
	t = replyTopic{checked: now}
	switch code := tm.Error.Code(); {
	case code == kafka.ErrNoError:
		t.partitions = int32(len(tm.Partitions))
	case undeliverableCode(code):
	default: // leader not available yet, and the like
		return replyTopic{}, domain.Unavailable("kafka", fmt.Errorf("look up reply topic %q: %w", topic, tm.Error))
	}
	r.remember(topic, t)
	return t, nil
}

func (r *Replies) trust(t replyTopic) time.Duration {
	if t.partitions == 0 {
		return r.missingTTL
	}
	return r.ttl
}

// remember keeps t for topic; when too many topics are known, it forgets
// the ones no longer trusted first, and everything if that is not enough.
func (r *Replies) remember(topic string, t replyTopic) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.known) >= maxKnownTopics {
		for name, k := range r.known {
			if t.checked.Sub(k.checked) >= r.trust(k) {
				delete(r.known, name)
			}
		}
		if len(r.known) >= maxKnownTopics {
			clear(r.known)
		}
	}
	r.known[topic] = t
}

func (r *Replies) forget(topic string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.known, topic)
}

// Send produces a reply along route and waits for the broker. code is the
// error code of a failed request, "" for success; it goes in the auth_error
// header. A reply that can never go there (no such topic or partition, too
// large, not authorised) fails with an error wrapping
// schemas.ErrReplyUndeliverable, and the topic is looked up again by the
// next Deliverable.
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
	err := r.producer.Send(ctx, msg)
	var kerr kafka.Error
	switch {
	case err == nil:
		return nil
	case errors.As(err, &kerr) && undeliverableCode(kerr.Code()):
		r.forget(topic)
		return fmt.Errorf("send reply: %w: %w", schemas.ErrReplyUndeliverable, err)
	}
	return fmt.Errorf("send reply: %w", err)
}

// undeliverableCode reports whether a record to a topic failing with code
// will fail again however often it is sent: the topic or partition does
// not exist, the name is not a topic's, the record is too large, or the
// worker may not write there.
func undeliverableCode(code kafka.ErrorCode) bool {
	switch code {
	case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic, kafka.ErrUnknownPartition,
		kafka.ErrTopicException, kafka.ErrMsgSizeTooLarge, kafka.ErrTopicAuthorizationFailed:
		return true
	}
	return false
}
