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
// is asked about again after DefaultTopicTTL, and at once when a request
// names a partition beyond the ones it had. A topic found missing is
// always asked about again before a request is refused, but for
// DefaultMissingTopicTTL its absence needs no confirming (see
// Deliverable).
const (
	DefaultTopicTTL        = 30 * time.Second
	DefaultMissingTopicTTL = 5 * time.Second
)

// confirmPauses are the waits between the metadata requests that confirm
// that a reply topic, or a partition of it, does not exist: brokers answer
// that a topic does not exist for a moment after it was created, or while
// one restarts, and partitions just added are not in every answer at once.
var confirmPauses = []time.Duration{100 * time.Millisecond, 300 * time.Millisecond, time.Second}

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
	pauses     []time.Duration
	sleep      func(ctx context.Context, d time.Duration)
	now        func() time.Time

	mu    sync.Mutex
	known map[string]replyTopic
}

// replyTopic is what Replies learnt of a topic: its partition count, 0 when
// it does not exist, and when; absent says it was kept after confirming
// that a route to it does not exist.
type replyTopic struct {
	partitions int32
	checked    time.Time
	absent     bool
}

// RepliesOption configures Replies.
type RepliesOption func(*Replies)

// WithSleep sets how Deliverable waits between the metadata requests that
// confirm an absence; default a timer. In the worker, consumers.Sleep,
// which lets the record's worker take other records meanwhile.
func WithSleep(sleep func(ctx context.Context, d time.Duration)) RepliesOption {
	return func(r *Replies) { r.sleep = sleep }
}

// NewReplies returns Replies sending through producer.
func NewReplies(producer *Producer, opts ...RepliesOption) *Replies {
	r := &Replies{
		producer:   producer,
		ttl:        DefaultTopicTTL,
		missingTTL: DefaultMissingTopicTTL,
		pauses:     confirmPauses,
		sleep:      sleep,
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
// brokers do not answer.
//
// A topic found is trusted for DefaultTopicTTL, so that most calls ask the
// brokers nothing. An absence is never taken from memory alone: the
// brokers are asked again, and a first absence is confirmed by asking
// again after each of confirmPauses (1.4 s in all) before the route is
// refused. A confirmed absence is trusted for DefaultMissingTopicTTL as far
// as needing no new confirmation, so that requests naming a topic that
// does not exist cost one metadata request each, not seconds.
func (r *Replies) Deliverable(ctx context.Context, route schemas.Route) error {
	if t, ok := r.trusted(route.Topic); ok && t.has(route.Partition) {
		return nil
	}
	t, err := r.lookup(ctx, route.Topic)
	if err != nil {
		return err
	}
	confirmed := r.confirmedAbsent(route)
	for _, pause := range r.pauses {
		if t.has(route.Partition) || confirmed {
			break
		}
		r.sleep(ctx, pause)
		if err := ctx.Err(); err != nil {
			return err
		}
		if t, err = r.lookup(ctx, route.Topic); err != nil {
			return err
		}
	}
	t.absent = !t.has(route.Partition)
	r.remember(route.Topic, t)
	switch {
	case t.partitions == 0:
		return fmt.Errorf("reply topic %q does not exist: %w", route.Topic, schemas.ErrReplyUndeliverable)
	case !t.has(route.Partition):
		return fmt.Errorf("reply topic %q has no partition %d (it has %d): %w", route.Topic, route.Partition, t.partitions, schemas.ErrReplyUndeliverable)
	}
	return nil
}

// has reports whether a reply can go to partition of the topic.
func (t replyTopic) has(partition int32) bool {
	return t.partitions > 0 && (partition == schemas.PartitionAny || partition < t.partitions)
}

// trusted returns what is known of topic, if it was found and is still
// trusted.
func (r *Replies) trusted(topic string) (replyTopic, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.known[topic]
	return t, ok && t.partitions > 0 && r.now().Sub(t.checked) < r.ttl
}

// confirmedAbsent reports whether route was found not to exist after
// confirming, lately enough to need no new confirmation.
func (r *Replies) confirmedAbsent(route schemas.Route) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	t, ok := r.known[route.Topic]
	return ok && t.absent && !t.has(route.Partition) && r.now().Sub(t.checked) < r.missingTTL
}

// lookup asks the brokers about topic.
func (r *Replies) lookup(ctx context.Context, topic string) (replyTopic, error) {
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
	t := replyTopic{checked: r.now()}
	switch code := tm.Error.Code(); {
	case code == kafka.ErrNoError:
		t.partitions = int32(len(tm.Partitions))
	case code == kafka.ErrUnknownTopicOrPart, code == kafka.ErrUnknownTopic, code == kafka.ErrTopicException,
		code == kafka.ErrTopicAuthorizationFailed:
		// absent, or as good as absent: confirmed by the caller
	default: // leader not available yet, and the like
		return replyTopic{}, domain.Unavailable("kafka", fmt.Errorf("look up reply topic %q: %w", topic, tm.Error))
	}
	return t, nil
}

// remember keeps t for topic; when too many topics are known, it forgets
// the ones no longer trusted first, and everything if that is not enough.
func (r *Replies) remember(topic string, t replyTopic) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.known) >= maxKnownTopics {
		for name, k := range r.known {
			if t.checked.Sub(k.checked) >= max(r.ttl, r.missingTTL) {
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

// sleep waits for d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
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
	if err == nil || !errors.As(err, &kerr) {
		return wrapSend(err)
	}
	switch kerr.Code() {
	case kafka.ErrMsgSizeTooLarge, kafka.ErrTopicException, kafka.ErrTopicAuthorizationFailed:
		return fmt.Errorf("send reply: %w: %w", schemas.ErrReplyUndeliverable, err)
	case kafka.ErrUnknownTopicOrPart, kafka.ErrUnknownTopic, kafka.ErrUnknownPartition:
		// Brokers say so for a moment of a topic just created, or while
		// one restarts: undeliverable only if the topic is confirmed absent.
		r.forget(topic)
		if derr := r.Deliverable(ctx, route); errors.Is(derr, schemas.ErrReplyUndeliverable) {
			return fmt.Errorf("send reply: %w: %w", derr, err)
		}
	}
	return wrapSend(err)
}

func wrapSend(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("send reply: %w", err)
}
