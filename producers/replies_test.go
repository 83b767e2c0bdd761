package producers_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// TestRepliesDeliverable: a route is deliverable when its topic exists
// and has the partition it names; a topic that does not exist, or a
// partition beyond the topic's, is undeliverable.
func TestRepliesDeliverable(t *testing.T) {
	p, topic := newTopic(t, 3)
	missing := testenv.Name(t, "missing")
	tests := []struct {
		name      string
		route     schemas.Route
		wantError bool
	}{
		{"AnyPartition", schemas.Route{Topic: topic, Partition: schemas.PartitionAny}, false},
		{"LastPartition", schemas.Route{Topic: topic, Partition: 2}, false},
		{"PartitionBeyondTheTopic", schemas.Route{Topic: topic, Partition: 7}, true},
		{"MissingTopic", schemas.Route{Topic: missing, Partition: schemas.PartitionAny}, true},
		{"MissingTopicAgain", schemas.Route{Topic: missing, Partition: 0}, true}, // from the cache
	}
	replies := producers.NewReplies(p)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			err := replies.Deliverable(ctx, tt.route)
			if got := errors.Is(err, schemas.ErrReplyUndeliverable); got != tt.wantError || (!tt.wantError && err != nil) {
				t.Fatalf("Deliverable(%+v) = %v, want undeliverable %v", tt.route, err, tt.wantError)
			}
		})
	}
}

// TestRepliesSendUndeliverable: a reply to a partition the topic does not
// have fails as undeliverable at once, not as a failure worth retrying.
func TestRepliesSendUndeliverable(t *testing.T) {
	p, topic := newTopic(t, 3)
	replies := producers.NewReplies(p)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := replies.Send(ctx, schemas.Route{Topic: topic, Partition: 1, Key: []byte("k")}, "", []byte("reply")); err != nil {
		t.Fatalf("send to partition 1 of 3: %v", err)
	}
	err := replies.Send(ctx, schemas.Route{Topic: topic, Partition: 7, Key: []byte("k")}, "", []byte("reply"))
	if !errors.Is(err, schemas.ErrReplyUndeliverable) {
		t.Fatalf("send to partition 7 of 3 = %v, want undeliverable", err)
	}
}

// TestRepliesDeliverableConfirmsAbsences: a topic found missing is asked
// about again after each confirming pause before a route to it is
// refused; a second request soon after needs no confirming; a topic that
// exists needs none.
func TestRepliesDeliverableConfirmsAbsences(t *testing.T) {
	p, topic := newTopic(t, 1)
	var pauses []time.Duration
	replies := producers.NewReplies(p, producers.WithSleep(func(_ context.Context, d time.Duration) { pauses = append(pauses, d) }))
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	missing := schemas.Route{Topic: testenv.Name(t, "missing"), Partition: schemas.PartitionAny}
	tests := []struct {
		name       string
		route      schemas.Route
		wantPauses int
	}{
		{"Missing", missing, 3},
		{"MissingAgain", missing, 0},
		{"Found", schemas.Route{Topic: topic, Partition: 0}, 0},
		{"PartitionBeyond", schemas.Route{Topic: topic, Partition: 1}, 3},
	}
	for _, tt := range tests {
		pauses = nil
		err := replies.Deliverable(ctx, tt.route)
		if wantErr := tt.wantPauses > 0 || tt.name == "MissingAgain"; errors.Is(err, schemas.ErrReplyUndeliverable) != wantErr {
			t.Errorf("%s: %v", tt.name, err)
		}
		if len(pauses) != tt.wantPauses {
			t.Errorf("%s: %d confirming pauses %v, want %d", tt.name, len(pauses), pauses, tt.wantPauses)
		}
	}
}

// TestRepliesDeliverableJustCreatedTopic: a reply topic created a moment
// ago, which a broker may still answer for as missing, is deliverable.
func TestRepliesDeliverableJustCreatedTopic(t *testing.T) {
	p, _ := newTopic(t, 1)
	admin, err := p.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	replies := producers.NewReplies(p)
	for i := range 20 {
		topic := testenv.Name(t, "fresh") + string(rune('a'+i))
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		res, err := admin.CreateTopics(ctx, []kafka.TopicSpecification{{Topic: topic, NumPartitions: 1, ReplicationFactor: 1}})
		if err != nil || res[0].Error.Code() != kafka.ErrNoError {
			cancel()
			t.Fatalf("create %s: %v %v", topic, err, res)
		}
		if err := replies.Deliverable(ctx, schemas.Route{Topic: topic, Partition: 0}); err != nil {
			t.Errorf("topic %s, just created: %v", topic, err)
		}
		_, _ = admin.DeleteTopics(ctx, []string{topic})
		cancel()
	}
}

// TestRepliesDeliverableSeesNewPartitions: a partition added to a reply
// topic that was looked up before is deliverable at once, not only once
// what was learnt of the topic is stale.
func TestRepliesDeliverableSeesNewPartitions(t *testing.T) {
	p, topic := newTopic(t, 1)
	replies := producers.NewReplies(p)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := replies.Deliverable(ctx, schemas.Route{Topic: topic, Partition: 0}); err != nil {
		t.Fatal(err)
	}
	admin, err := p.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	res, err := admin.CreatePartitions(ctx, []kafka.PartitionsSpecification{{Topic: topic, IncreaseTo: 3}})
	if err != nil || res[0].Error.Code() != kafka.ErrNoError {
		t.Fatalf("create partitions: %v %v", err, res)
	}
	if err := replies.Deliverable(ctx, schemas.Route{Topic: topic, Partition: 2}); err != nil {
		t.Errorf("partition 2 of the grown topic: %v", err)
	}
}
