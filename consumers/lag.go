package consumers

import (
	"cmp"
	"encoding/json"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// DefaultStatisticsInterval is how often librdkafka reports the consumer's
// statistics, the consumer lag among them, unless the Kafka setting
// statistics.interval.ms says otherwise.
const DefaultStatisticsInterval = 5 * time.Second

// Lag follows the consumer lag of the partitions assigned to one consumer,
// from the statistics librdkafka reports every statistics.interval.ms
// through Poll: it asks the broker for nothing itself, and reading it
// costs a copy of a few numbers. The watermarks in the statistics come
// with fetch responses and librdkafka's own offset queries, so the lag is
// as old as the last report.
type Lag struct {
	mu       sync.Mutex
	assigned map[lagKey]bool
	records  map[lagKey]int64 // last reported, of assigned partitions only
}

// PartitionLag is the lag of one assigned partition.
type PartitionLag struct {
	Topic     string
	Partition int32
	// Records is how many records of the partition have no durable
	// outcome yet: its high watermark less the offset the pool last
	// stored for it (or, before the pool stored one since the partition
	// was assigned, the committed offset).
	Records int64
}

// NewKafkaConsumerWithLag creates the librdkafka consumer NewPool would,
// reporting statistics (every DefaultStatisticsInterval unless cfg.Kafka
// sets statistics.interval.ms), and the Lag that reads them. Give the
// consumer to NewPoolWithConsumer.
func NewKafkaConsumerWithLag(cfg Config) (Consumer, *Lag, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, nil, err
	}
	if _, set := cfg.Kafka["statistics.interval.ms"]; !set {
		settings := make(map[string]string, len(cfg.Kafka)+1)
		for k, v := range cfg.Kafka {
			settings[k] = v
		}
		settings["statistics.interval.ms"] = strconv.FormatInt(DefaultStatisticsInterval.Milliseconds(), 10)
		cfg.Kafka = settings
	}
	c, err := newKafkaConsumer(cfg)
	if err != nil {
		return nil, nil, err
	}
	lag := NewLag()
	return lag.Wrap(c), lag, nil
}

// NewLag returns a Lag that knows no partition yet; Wrap gives it a
// consumer to follow.
func NewLag() *Lag {
	return &Lag{assigned: map[lagKey]bool{}, records: map[lagKey]int64{}}
}

// Wrap returns a Consumer that passes every call on to c, and tells l
// which partitions are assigned and what the statistics events that Poll
// returns say. The pool ignores those events.
func (l *Lag) Wrap(c Consumer) Consumer {
	return lagConsumer{Consumer: c, lag: l}
}

// Partitions returns the lag of every assigned partition that a
// statistics report covered since its assignment, ordered by topic and
// partition.
func (l *Lag) Partitions() []PartitionLag {
	l.mu.Lock()
	out := make([]PartitionLag, 0, len(l.records))
	for k, n := range l.records {
		out = append(out, PartitionLag{Topic: k.topic, Partition: k.partition, Records: n})
	}
	l.mu.Unlock()
	slices.SortFunc(out, func(a, b PartitionLag) int {
		return cmp.Or(cmp.Compare(a.Topic, b.Topic), cmp.Compare(a.Partition, b.Partition))
	})
	return out
}

func (l *Lag) assign(partitions []kafka.TopicPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tp := range partitions {
		l.assigned[lagKeyOf(tp)] = true
	}
}

func (l *Lag) unassign(partitions []kafka.TopicPartition) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, tp := range partitions {
		k := lagKeyOf(tp)
		delete(l.assigned, k)
		delete(l.records, k)
	}
}

// lagKey names a partition.
type lagKey struct {
	topic     string
	partition int32
}

func lagKeyOf(tp kafka.TopicPartition) lagKey {
	k := lagKey{partition: tp.Partition}
	if tp.Topic != nil {
		k.topic = *tp.Topic
	}
	return k
}

// statistics is the part of librdkafka's statistics JSON that Lag reads
// (librdkafka's STATISTICS.md).
type statistics struct {
	Topics map[string]struct {
		Partitions map[string]struct {
			Partition int32 `json:"partition"`
			// ConsumerLag is the high watermark (the last stable
			// offset under read_committed) less the committed offset;
			// ConsumerLagStored the same less the stored offset. -1
			// when unknown.
			ConsumerLag       int64 `json:"consumer_lag"`
			ConsumerLagStored int64 `json:"consumer_lag_stored"`
		} `json:"partitions"`
	} `json:"topics"`
}

// Update reads a statistics report, the JSON of a kafka.Stats event; the
// consumer Wrap returns calls it for every one. A report that does not
// parse changes nothing: the lag stays as last reported.
func (l *Lag) Update(report string) {
	var s statistics
	if err := json.Unmarshal([]byte(report), &s); err != nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for topic, t := range s.Topics {
		for _, p := range t.Partitions {
			k := lagKey{topic: topic, partition: p.Partition}
			if !l.assigned[k] {
				continue // another member's, or librdkafka's unassigned placeholder (-1)
			}
			switch {
			case p.ConsumerLagStored >= 0:
				l.records[k] = p.ConsumerLagStored
			case p.ConsumerLag >= 0:
				l.records[k] = p.ConsumerLag
			}
		}
	}
}

// lagConsumer is a Consumer whose assignments and statistics a Lag
// follows.
type lagConsumer struct {
	Consumer
	lag *Lag
}

// Poll implements Consumer.
func (c lagConsumer) Poll(timeoutMs int) kafka.Event {
	ev := c.Consumer.Poll(timeoutMs)
	if s, ok := ev.(*kafka.Stats); ok {
		c.lag.Update(s.String())
	}
	return ev
}

// IncrementalAssign implements Consumer.
func (c lagConsumer) IncrementalAssign(partitions []kafka.TopicPartition) error {
	if err := c.Consumer.IncrementalAssign(partitions); err != nil {
		return err
	}
	c.lag.assign(partitions)
	return nil
}

// IncrementalUnassign implements Consumer.
func (c lagConsumer) IncrementalUnassign(partitions []kafka.TopicPartition) error {
	c.lag.unassign(partitions)
	return c.Consumer.IncrementalUnassign(partitions)
}
