package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/testenv"
)

// poolKafka is a broker for one test: its topic and consumer group are the
// test's own, and deleted at cleanup.
type poolKafka struct {
	tb        testing.TB
	bootstrap string
	topic     string
	group     string
	admin     *kafka.AdminClient
	producer  *kafka.Producer
}

func newPoolKafka(tb testing.TB, partitions int) *poolKafka {
	tb.Helper()
	bootstrap := testenv.KafkaBootstrap(tb)
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		tb.Fatalf("admin client: %v", err)
	}
	producer, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": true,
	})
	if err != nil {
		admin.Close()
		tb.Fatalf("producer: %v", err)
	}
	k := &poolKafka{tb: tb, bootstrap: bootstrap, topic: testenv.Name(tb, "topic"), group: testenv.Name(tb, "group"),
		admin: admin, producer: producer}
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	if err := producers.EnsureTopics(ctx, admin, []producers.Topic{{Name: k.topic, Partitions: partitions}}); err != nil {
		producer.Close()
		admin.Close()
		tb.Fatalf("create topic: %v", err)
	}
	tb.Cleanup(func() {
		producer.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := admin.DeleteConsumerGroups(ctx, []string{k.group}); err != nil {
			tb.Logf("delete group %s: %v", k.group, err)
		}
		if _, err := admin.DeleteTopics(ctx, []string{k.topic}); err != nil {
			tb.Logf("delete topic %s: %v", k.topic, err)
		}
		admin.Close()
	})
	return k
}

// message is a record to produce: to partition, or by key when partition
// is kafka.PartitionAny.
type message struct {
	key, value string
	partition  int32
}

// produce writes msgs in order and returns where each landed.
func (k *poolKafka) produce(msgs []message) []rec {
	k.tb.Helper()
	recs, err := k.tryProduce(msgs)
	if err != nil {
		k.tb.Fatal(err)
	}
	return recs
}

// tryProduce is produce for goroutines other than the test's.
func (k *poolKafka) tryProduce(msgs []message) ([]rec, error) {
	delivered := make(chan kafka.Event, len(msgs))
	for i, m := range msgs {
		err := k.producer.Produce(&kafka.Message{
			TopicPartition: kafka.TopicPartition{Topic: &k.topic, Partition: m.partition},
			Key:            []byte(m.key),
			Value:          []byte(m.value),
			Opaque:         i,
		}, delivered)
		if err != nil {
			return nil, fmt.Errorf("produce: %w", err)
		}
	}
	recs := make([]rec, len(msgs))
	timeout := time.After(poolWait)
	for range msgs {
		select {
		case ev := <-delivered:
			m := ev.(*kafka.Message)
			if m.TopicPartition.Error != nil {
				return nil, fmt.Errorf("deliver: %w", m.TopicPartition.Error)
			}
			recs[m.Opaque.(int)] = recOf(m)
		case <-timeout:
			return nil, errors.New("records not delivered")
		}
	}
	return recs, nil
}

// committed returns the group's committed offset per partition; -1 where
// nothing is committed.
func (k *poolKafka) committed(partitions int) map[int32]int64 {
	k.tb.Helper()
	tps := make([]kafka.TopicPartition, partitions)
	for i := range tps {
		tps[i] = kafka.TopicPartition{Topic: &k.topic, Partition: int32(i)}
	}
	ctx, cancel := context.WithTimeout(context.Background(), poolWait)
	defer cancel()
	res, err := k.admin.ListConsumerGroupOffsets(ctx, []kafka.ConsumerGroupTopicPartitions{{Group: k.group, Partitions: tps}})
	if err != nil {
		k.tb.Fatalf("list group offsets: %v", err)
	}
	got := map[int32]int64{}
	for _, tp := range res.ConsumerGroupsTopicPartitions[0].Partitions {
		if tp.Error != nil {
			k.tb.Fatalf("group offset of partition %d: %v", tp.Partition, tp.Error)
		}
		got[tp.Partition] = max(int64(tp.Offset), -1)
	}
	return got
}

// config is a pool configuration for this test's topic and group.
func (k *poolKafka) config() Config {
	return Config{
		BootstrapServers: k.bootstrap,
		GroupID:          k.group,
		Topics:           []string{k.topic},
		DrainTimeout:     5 * time.Second,
		// Members learn of a rebalance at their next heartbeat.
		Kafka:  map[string]string{"heartbeat.interval.ms": "500"},
		Logger: slog.New(slog.NewTextHandler(k.tb.Output(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	}
}

// startPool runs a pool until stop, or until the test ends.
func startPool(tb testing.TB, cfg Config, h Handler) *runningPool {
	tb.Helper()
	p, err := NewPool(cfg, h)
	if err != nil {
		tb.Fatalf("NewPool: %v", err)
	}
	return runPool(tb, p)
}
