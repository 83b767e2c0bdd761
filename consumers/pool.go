// Package consumers reads auth requests from Kafka and answers them: a pool
// of workers fed by one poll loop, records of one key kept in order,
// independent keys handled in parallel, and consumer offsets stored only
// behind records whose outcome is durable.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Handler processes one record. It returns nil once the record's outcome is
// durable (its reply or dead letter acknowledged by the broker); only then
// may the record's offset be committed. An error means the outcome is not
// durable yet: the pool retries the record with backoff until it succeeds or
// the pool shuts down, and then the record is consumed again after restart.
type Handler interface {
	Handle(ctx context.Context, msg *kafka.Message) error
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(ctx context.Context, msg *kafka.Message) error

// Handle calls f.
func (f HandlerFunc) Handle(ctx context.Context, msg *kafka.Message) error { return f(ctx, msg) }

// Config configures a Pool.
type Config struct {
	BootstrapServers string
	GroupID          string   // default "authworker"
	Topics           []string // required

	// Workers is the number of records handled at once. Records with the
	// same key always go to the same worker, in order. Default 8.
	Workers int
	// QueueDepth is how many records wait per worker before the poll loop
	// stops fetching: the pool's backpressure. Default 16.
	QueueDepth int
	// DrainTimeout bounds how long records in flight may take to finish
	// when partitions are revoked or the pool stops. Default 15 seconds.
	DrainTimeout time.Duration

	// Kafka holds further librdkafka settings; they override the
	// defaults, except the offset-management ones the pool relies on.
	Kafka  map[string]string
	Logger *slog.Logger
}

func (c *Config) setDefaults() {
	if c.GroupID == "" {
		c.GroupID = "authworker"
	}
	if c.Workers == 0 {
		c.Workers = 8
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = 16
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = 15 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	switch {
	case c.BootstrapServers == "":
		return errors.New("kafka bootstrap servers are required")
	case len(c.Topics) == 0:
		return errors.New("at least one topic to consume is required")
	case c.Workers < 1:
		return fmt.Errorf("workers must be at least 1, got %d", c.Workers)
	case c.QueueDepth < 1:
		return fmt.Errorf("queue depth must be at least 1, got %d", c.QueueDepth)
	case c.DrainTimeout <= 0:
		return errors.New("drain timeout must be positive")
	}
	return nil
}

// Pool consumes records with a consumer group and hands them to a Handler.
type Pool struct {
	cfg      Config
	handler  Handler
	consumer *kafka.Consumer

	mu         sync.Mutex
	partitions map[partitionKey]*partitionOffsets
}

type partitionKey struct {
	topic     string
	partition int32
}

func keyOf(tp kafka.TopicPartition) partitionKey {
	var topic string
	if tp.Topic != nil {
		topic = *tp.Topic
	}
	return partitionKey{topic: topic, partition: tp.Partition}
}

type job struct {
	msg     *kafka.Message
	offsets *partitionOffsets
}

// NewPool creates the consumer. Nothing is consumed until Run.
func NewPool(cfg Config, handler Handler) (*Pool, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conf := kafka.ConfigMap{
		"bootstrap.servers":             cfg.BootstrapServers,
		"client.id":                     "authworker",
		"auto.offset.reset":             "earliest", // a request sent before the first start is still answered
		"partition.assignment.strategy": "cooperative-sticky",
	}
	for k, v := range cfg.Kafka {
		conf[k] = v
	}
	conf["group.id"] = cfg.GroupID
	// Offsets are stored by the pool, once a record's outcome is durable,
	// and committed in the background and at every revocation.
	conf["enable.auto.commit"] = true
	conf["enable.auto.offset.store"] = false
	c, err := kafka.NewConsumer(&conf)
	if err != nil {
		return nil, fmt.Errorf("create kafka consumer: %w", err)
	}
	return &Pool{cfg: cfg, handler: handler, consumer: c, partitions: map[partitionKey]*partitionOffsets{}}, nil
}

// Run consumes until ctx ends, then lets records in flight finish (within
// DrainTimeout), commits, and closes the consumer. Records fetched but not
// started are left for the next owner of their partition.
func (p *Pool) Run(ctx context.Context) error {
	defer p.consumer.Close()
	if err := p.consumer.SubscribeTopics(p.cfg.Topics, p.rebalance); err != nil {
		return fmt.Errorf("subscribe to %v: %w", p.cfg.Topics, err)
	}

	// Records in flight get DrainTimeout past ctx's end to finish.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	stop := context.AfterFunc(ctx, func() {
		t := time.AfterFunc(p.cfg.DrainTimeout, cancelWork)
		context.AfterFunc(workCtx, func() { t.Stop() })
	})
	defer stop()

	lanes := make([]chan job, p.cfg.Workers)
	var workers sync.WaitGroup
	for i := range lanes {
		lanes[i] = make(chan job, p.cfg.QueueDepth)
		workers.Go(func() { p.work(ctx, workCtx, lanes[i]) })
	}

	err := p.poll(ctx, lanes)
	for _, l := range lanes {
		close(l)
	}
	workers.Wait()
	p.commit()
	// Nothing is in flight any more; the revocation that closing the
	// consumer triggers has nothing to wait for.
	p.mu.Lock()
	clear(p.partitions)
	p.mu.Unlock()
	return err
}

// poll fetches records and dispatches them until ctx ends or the consumer
// fails for good.
func (p *Pool) poll(ctx context.Context, lanes []chan job) error {
	for ctx.Err() == nil {
		switch e := p.consumer.Poll(100).(type) {
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				p.cfg.Logger.Warn("consume error", "topic", keyOf(e.TopicPartition).topic, "err", e.TopicPartition.Error)
				continue
			}
			offsets := p.offsetsFor(e.TopicPartition)
			offsets.add(int64(e.TopicPartition.Offset))
			select {
			case lanes[p.laneOf(e)] <- job{msg: e, offsets: offsets}:
			case <-ctx.Done():
			}
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("kafka consumer: %w", e)
			}
			// Transient: librdkafka reconnects on its own.
			p.cfg.Logger.Warn("kafka consumer error", "err", e)
		}
	}
	return nil
}

// laneOf sends all records with one key to one worker, keeping their order.
// Keyless records keep their partition's order instead.
func (p *Pool) laneOf(msg *kafka.Message) int {
	h := fnv.New32a()
	if len(msg.Key) > 0 {
		h.Write(msg.Key)
	} else {
		k := keyOf(msg.TopicPartition)
		h.Write([]byte(k.topic))
		h.Write([]byte{byte(k.partition >> 24), byte(k.partition >> 16), byte(k.partition >> 8), byte(k.partition)})
	}
	return int(h.Sum32() % uint32(p.cfg.Workers))
}

// work handles the records of one lane. Once ctx ends it finishes the record
// in hand and leaves the queued ones.
func (p *Pool) work(ctx, workCtx context.Context, lane <-chan job) {
	for j := range lane {
		if ctx.Err() != nil {
			continue // drain the lane without handling: not committed, consumed again later
		}
		if !p.handle(workCtx, j.msg) {
			continue
		}
		if next := j.offsets.done(int64(j.msg.TopicPartition.Offset)); next >= 0 {
			p.store(j, next)
		}
	}
}

// handle runs the handler until it succeeds, backing off between attempts.
// It reports false when it gave up because workCtx ended.
func (p *Pool) handle(workCtx context.Context, msg *kafka.Message) bool {
	backoff := 50 * time.Millisecond
	for {
		err := p.handler.Handle(workCtx, msg)
		if err == nil {
			return true
		}
		if workCtx.Err() != nil {
			return false
		}
		k := keyOf(msg.TopicPartition)
		p.cfg.Logger.Warn("record not handled, retrying", "topic", k.topic, "partition", k.partition,
			"offset", int64(msg.TopicPartition.Offset), "backoff", backoff, "err", err)
		select {
		case <-workCtx.Done():
			return false
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// store stores the next offset to commit, unless the partition was revoked
// (and perhaps reassigned) since the record was dispatched.
func (p *Pool) store(j job, next int64) {
	k := keyOf(j.msg.TopicPartition)
	p.mu.Lock()
	current := p.partitions[k] == j.offsets
	p.mu.Unlock()
	if !current {
		return
	}
	tp := j.msg.TopicPartition
	tp.Offset = kafka.Offset(next)
	if _, err := p.consumer.StoreOffsets([]kafka.TopicPartition{tp}); err != nil {
		p.cfg.Logger.Warn("store offset", "topic", k.topic, "partition", k.partition, "offset", next, "err", err)
	}
}

func (p *Pool) offsetsFor(tp kafka.TopicPartition) *partitionOffsets {
	k := keyOf(tp)
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.partitions[k]
	if !ok {
		o = newPartitionOffsets()
		p.partitions[k] = o
	}
	return o
}

// rebalance runs in the poll loop. On revocation it waits for the revoked
// partitions' records in flight, then commits, so the next owner starts
// right after the last durable outcome.
func (p *Pool) rebalance(c *kafka.Consumer, ev kafka.Event) error {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		p.mu.Lock()
		for _, tp := range e.Partitions {
			p.partitions[keyOf(tp)] = newPartitionOffsets()
		}
		p.mu.Unlock()
		p.cfg.Logger.Info("partitions assigned", "count", len(e.Partitions))
	case kafka.RevokedPartitions:
		lost := c.AssignmentLost()
		deadline := time.After(p.cfg.DrainTimeout)
		for _, tp := range e.Partitions {
			k := keyOf(tp)
			p.mu.Lock()
			o := p.partitions[k]
			p.mu.Unlock()
			if o != nil && !lost {
				select {
				case <-o.drained():
				case <-deadline:
					p.cfg.Logger.Warn("revoked partition still busy; its records in flight will be consumed again",
						"topic", k.topic, "partition", k.partition, "in_flight", o.inFlight())
				}
			}
			p.mu.Lock()
			delete(p.partitions, k)
			p.mu.Unlock()
		}
		if !lost {
			p.commit()
		}
		p.cfg.Logger.Info("partitions revoked", "count", len(e.Partitions), "lost", lost)
	}
	return nil
}

// commit commits the stored offsets now.
func (p *Pool) commit() {
	if _, err := p.consumer.Commit(); err != nil {
		var kerr kafka.Error
		if errors.As(err, &kerr) && kerr.Code() == kafka.ErrNoOffset {
			return
		}
		p.cfg.Logger.Warn("commit offsets", "err", err)
	}
}
