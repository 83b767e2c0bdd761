package consumers

import (
	"fmt"
	"strconv"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/kafkalog"
)

// Consumer is what the pool needs of a Kafka consumer in a consumer group;
// *kafka.Consumer satisfies it through kafkaConsumer. It is this narrow so
// that rebalances, pauses and backpressure can be tested with a fake.
//
// The pool calls every method from the goroutine running Run, except
// StoreOffsets, which the workers call.
type Consumer interface {
	// SubscribeTopics joins the group for topics. rebalance is called from
	// within Poll and Close with kafka.AssignedPartitions and
	// kafka.RevokedPartitions, and acknowledges each with IncrementalAssign
	// or IncrementalUnassign before it returns.
	SubscribeTopics(topics []string, rebalance func(kafka.Event)) error
	// Poll waits at most timeoutMs for a record or an event and returns
	// it, or nil. A rebalance is handed to the rebalance callback instead,
	// and Poll returns nil.
	Poll(timeoutMs int) kafka.Event
	// IncrementalAssign starts consuming partitions, from their committed
	// offsets.
	IncrementalAssign(partitions []kafka.TopicPartition) error
	// IncrementalUnassign stops consuming partitions, first committing
	// the offsets stored for them unless the assignment was lost.
	IncrementalUnassign(partitions []kafka.TopicPartition) error
	// AssignmentLost reports, within the rebalance callback, whether the
	// revoked partitions were lost: another member may own them already.
	AssignmentLost() bool
	// Pause stops fetching partitions and drops the records prefetched
	// for them. A partition stays paused until Resume, even across
	// assignments.
	Pause(partitions []kafka.TopicPartition) error
	// Resume fetches partitions again, from the record after the last one
	// Poll returned.
	Resume(partitions []kafka.TopicPartition) error
	// StoreOffsets stores the next offsets to commit for assigned
	// partitions; they are committed in the background, on unassign and
	// by Commit.
	StoreOffsets(offsets []kafka.TopicPartition) ([]kafka.TopicPartition, error)
	// Commit commits the stored offsets now. It returns a kafka.Error
	// with code kafka.ErrNoOffset when none was stored since the last
	// commit.
	Commit() ([]kafka.TopicPartition, error)
	// Close leaves the group, revoking the assignment through the
	// rebalance callback. No method may be called after Close.
	Close() error
}

// kafkaConsumer adapts *kafka.Consumer to Consumer: its rebalance callback
// is given the consumer, which the pool does not need. Its librdkafka log
// lines go to the pool's logger through logs.
type kafkaConsumer struct {
	*kafka.Consumer
	logs *kafkalog.Forwarder
}

// Close implements Consumer, and stops forwarding the client's log lines
// once it is closed.
func (c kafkaConsumer) Close() error {
	err := c.Consumer.Close()
	c.logs.Close()
	return err
}

var _ Consumer = kafkaConsumer{}

// SubscribeTopics implements Consumer.
func (c kafkaConsumer) SubscribeTopics(topics []string, rebalance func(kafka.Event)) error {
	return c.Consumer.SubscribeTopics(topics, func(_ *kafka.Consumer, ev kafka.Event) error {
		rebalance(ev)
		return nil // confluent-kafka-go ignores it
	})
}

// newKafkaConsumer creates the librdkafka consumer the pool relies on.
func newKafkaConsumer(cfg Config) (kafkaConsumer, error) {
	conf := kafka.ConfigMap{
		"bootstrap.servers": cfg.BootstrapServers,
		"client.id":         "authworker",
		"auto.offset.reset": "earliest", // a request sent before the first start is still answered
	}
	classic := cfg.Kafka["group.protocol"] != "consumer"
	if classic { // KIP-848 groups assign on the broker, incrementally
		conf["partition.assignment.strategy"] = "cooperative-sticky"
	}
	// A crash re-reads what was handled since the last commit, answering
	// it again from the stored outcomes: commit the stored offsets every
	// second rather than librdkafka's 5 s, for a fifth of that work. A
	// commit is one small request to the coordinator, and none is sent
	// when no offset moved.
	conf["auto.commit.interval.ms"] = strconv.FormatInt(DefaultCommitInterval.Milliseconds(), 10)
	// librdkafka prefetches up to 64 MiB by default, held in the worker's
	// memory while a backlog waits; the pool takes at most Workers × (1 +
	// QueueDepth) records (requests are a few hundred bytes each) and
	// pauses fetching beyond, so a few MiB keep it fed.
	conf["queued.max.messages.kbytes"] = strconv.Itoa(DefaultPrefetchKiB)
	if cfg.InstanceID != "" {
		conf["group.instance.id"] = cfg.InstanceID
		if classic { // under KIP-848 the broker owns the session
			conf["session.timeout.ms"] = strconv.FormatInt(DefaultStaticSessionTimeout.Milliseconds(), 10)
		}
	}
	for k, v := range cfg.Kafka {
		conf[k] = v
	}
	conf["group.id"] = cfg.GroupID
	// Offsets are stored by the pool, once a record's outcome is durable,
	// and committed by librdkafka in the background and whenever
	// partitions are unassigned (before it rejoins the group), and by the
	// pool at shutdown.
	conf["enable.auto.commit"] = true
	conf["enable.auto.offset.store"] = false
	// The pool polls, and acknowledges rebalances in its callback.
	conf["go.events.channel.enable"] = false
	conf["go.application.rebalance.enable"] = false
	logs := kafkalog.Forward(conf, cfg.Logger)
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		logs.Close()
		return kafkaConsumer{}, fmt.Errorf("create kafka consumer: %w", err)
	}
	return kafkaConsumer{c, logs}, nil
}
