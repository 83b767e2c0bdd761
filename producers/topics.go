package producers

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Topic describes a topic the worker needs.
type Topic struct {
	Name       string
	Partitions int
	// Retention is how long records are kept; zero keeps the broker's
	// default. Request and reply topics carry passwords and tokens, so
	// they get a short one.
	Retention time.Duration
}

// topicPropagation bounds how long EnsureTopics waits for new topics to
// have leaders on every partition.
const topicPropagation = 30 * time.Second

// EnsureTopics creates the topics that do not exist yet, with the broker's
// default replication factor, and returns once they are usable: their
// partitions have leaders. Existing topics are left as they are.
func EnsureTopics(ctx context.Context, admin *kafka.AdminClient, topics []Topic) error {
	specs := make([]kafka.TopicSpecification, 0, len(topics))
	for _, t := range topics {
		spec := kafka.TopicSpecification{Topic: t.Name, NumPartitions: t.Partitions, ReplicationFactor: -1}
		if t.Retention > 0 {
			spec.Config = map[string]string{"retention.ms": strconv.FormatInt(t.Retention.Milliseconds(), 10)}
		}
		specs = append(specs, spec)
	}
	wait := topicPropagation
	if d, ok := ctx.Deadline(); ok && time.Until(d) < wait {
		wait = time.Until(d)
	}
	results, err := admin.CreateTopics(ctx, specs, kafka.SetAdminOperationTimeout(wait))
	if err != nil {
		return fmt.Errorf("create topics: %w", err)
	}
	for _, r := range results {
		switch r.Error.Code() {
		case kafka.ErrNoError, kafka.ErrTopicAlreadyExists:
		default:
			return fmt.Errorf("create topic %s: %w", r.Topic, r.Error)
		}
	}
	return nil
}
