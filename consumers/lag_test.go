package consumers_test

import (
	"testing"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/consumers"
)

// statsConsumer is a Consumer whose Poll returns the queued events; the
// methods Lag does not wrap are left to the nil interface.
type statsConsumer struct {
	consumers.Consumer
	events []kafka.Event
}

func (c *statsConsumer) Poll(int) kafka.Event {
	if len(c.events) == 0 {
		return nil
	}
	ev := c.events[0]
	c.events = c.events[1:]
	return ev
}

func (c *statsConsumer) IncrementalAssign([]kafka.TopicPartition) error   { return nil }
func (c *statsConsumer) IncrementalUnassign([]kafka.TopicPartition) error { return nil }

func tp(topic string, partition int32) kafka.TopicPartition {
	return kafka.TopicPartition{Topic: &topic, Partition: partition}
}

// A statistics report as librdkafka writes it, cut down to what matters:
// two assigned partitions (one with an offset stored, one with only a
// committed one), one of another member, one whose lag is unknown, the
// unassigned placeholder, and a topic the worker does not read.
const report = `{"name":"authworker#consumer-1","type":"consumer","topics":{
 "auth.request":{"topic":"auth.request","partitions":{
  "0":{"partition":0,"consumer_lag":7,"consumer_lag_stored":3},
  "1":{"partition":1,"consumer_lag":5,"consumer_lag_stored":-1},
  "2":{"partition":2,"consumer_lag":9,"consumer_lag_stored":9},
  "3":{"partition":3,"consumer_lag":-1,"consumer_lag_stored":-1},
  "-1":{"partition":-1,"consumer_lag":-1,"consumer_lag_stored":-1}}},
 "other":{"topic":"other","partitions":{"0":{"partition":0,"consumer_lag":1,"consumer_lag_stored":1}}}}}`

// TestLagFromStatistics: the lag of each assigned partition comes from
// librdkafka's statistics, stored offsets first; statistics events still
// reach the pool, and an unassigned partition is forgotten.
func TestLagFromStatistics(t *testing.T) {
	lag := consumers.NewLag()
	inner := &statsConsumer{events: []kafka.Event{&kafka.Stats{}}}
	c := lag.Wrap(inner)

	if err := c.IncrementalAssign([]kafka.TopicPartition{tp("auth.request", 0), tp("auth.request", 1), tp("auth.request", 3)}); err != nil {
		t.Fatal(err)
	}
	if got := lag.Partitions(); len(got) != 0 {
		t.Errorf("lag before any report %v, want none", got)
	}
	// kafka.Stats keeps its JSON unexported: an empty one goes through
	// Poll (and does not parse), the report is given as Poll gives it.
	if _, ok := c.Poll(0).(*kafka.Stats); !ok {
		t.Fatal("the statistics event did not reach the caller")
	}
	lag.Update(report)
	want := []consumers.PartitionLag{{Topic: "auth.request", Partition: 0, Records: 3}, {Topic: "auth.request", Partition: 1, Records: 5}}
	if got := lag.Partitions(); !equalLag(got, want) {
		t.Errorf("lag %v, want %v", got, want)
	}

	if err := c.IncrementalUnassign([]kafka.TopicPartition{tp("auth.request", 0)}); err != nil {
		t.Fatal(err)
	}
	want = want[1:]
	if got := lag.Partitions(); !equalLag(got, want) {
		t.Errorf("lag after revoking partition 0 %v, want %v", got, want)
	}
}

func equalLag(a, b []consumers.PartitionLag) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
