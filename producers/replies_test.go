package producers_test

import (
	"context"
	"errors"
	"testing"
	"time"

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

// TestRepliesDeliverableSeesANewTopic: a topic found missing is looked up
// again once the negative answer is older than the given time to live, so
// a reply topic created after a service's first request is used.
func TestRepliesDeliverableSeesANewTopic(t *testing.T) {
	p, _ := newTopic(t, 1)
	replies := producers.NewReplies(p, producers.WithMissingTopicTTL(100*time.Millisecond))
	route := schemas.Route{Topic: testenv.Name(t, "later"), Partition: 0}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := replies.Deliverable(ctx, route); !errors.Is(err, schemas.ErrReplyUndeliverable) {
		t.Fatalf("before the topic exists: %v, want undeliverable", err)
	}
	admin, err := p.Admin()
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	if err := producers.EnsureTopics(ctx, admin, []producers.Topic{{Name: route.Topic, Partitions: 1}}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _, _ = admin.DeleteTopics(context.Background(), []string{route.Topic}) })
	deadline := time.Now().Add(10 * time.Second)
	for {
		err := replies.Deliverable(ctx, route)
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("10 s after the topic was created: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
