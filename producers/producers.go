// Package producers writes to Kafka: correlated replies to requests, dead
// letters for records that cannot be answered, outbox messages, and the
// topics they need.
//
// Every send waits for the broker's acknowledgement (acks=all, idempotent
// producer), so a caller that stores a consumer offset after Send returns
// never loses an outcome.
package producers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/kafkalog"
)

// Config configures a Producer.
type Config struct {
	// BootstrapServers lists the brokers, host:port separated by commas.
	BootstrapServers string
	// Kafka holds further librdkafka settings (security.protocol,
	// sasl.*, ssl.*, ...); they override the defaults below.
	Kafka map[string]string
	// FlushTimeout bounds how long Close waits for queued records.
	// Default 10 seconds.
	FlushTimeout time.Duration
	Logger       *slog.Logger
}

func (c *Config) setDefaults() {
	if c.FlushTimeout == 0 {
		c.FlushTimeout = 10 * time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Validate reports the first setting that cannot work.
func (c Config) Validate() error {
	if c.BootstrapServers == "" {
		return errors.New("kafka bootstrap servers are required")
	}
	return nil
}

// Producer sends records and waits for their acknowledgement.
type Producer struct {
	p         *kafka.Producer
	cfg       Config
	closeOnce sync.Once
	done      chan struct{}
	logs      *kafkalog.Forwarder
}

// NewProducer connects a producer. It does not wait for the brokers: the
// first Send does.
func NewProducer(cfg Config) (*Producer, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	conf := kafka.ConfigMap{
		"bootstrap.servers":  cfg.BootstrapServers,
		"enable.idempotence": true, // implies acks=all and ordered, deduplicated retries
		"acks":               "all",
		"linger.ms":          1, // replies are latency-bound, not throughput-bound
		"compression.type":   "lz4",
		"client.id":          "authworker",
		// Reply topics are named by requests: never have the broker create
		// one because a request named it (the worker creates its own topics
		// at start-up).
		"allow.auto.create.topics": false,
		// The Go client's channels default to a million entries each: 16
		// MB of pointers per producer that the garbage collector scans on
		// every cycle, and argon2id's buffers make cycles frequent. Send
		// uses neither the produce channel nor the events channel for
		// deliveries (see watch), so a few entries do.
		"go.produce.channel.size": 16,
		"go.events.channel.size":  1024,
	}
	for k, v := range cfg.Kafka {
		conf[k] = v
	}
	logs := kafkalog.Forward(conf, cfg.Logger)
	p, err := kafka.NewProducer(&conf)
	if err != nil {
		logs.Close()
		return nil, fmt.Errorf("create kafka producer: %w", err)
	}
	pr := &Producer{p: p, cfg: cfg, done: make(chan struct{}), logs: logs}
	go pr.watch()
	return pr, nil
}

// watch logs client-level events: broker errors and fatal producer errors.
func (p *Producer) watch() {
	defer close(p.done)
	for e := range p.p.Events() {
		switch ev := e.(type) {
		case kafka.Error:
			if ev.IsFatal() {
				p.cfg.Logger.Error("kafka producer fatal error", "err", ev)
			} else {
				p.cfg.Logger.Warn("kafka producer error", "err", ev)
			}
		case *kafka.Message:
			// Sent without a delivery channel: not done by this package.
			p.cfg.Logger.Warn("unexpected delivery report", "topic", topicOf(ev.TopicPartition))
		}
	}
}

// Send produces msg and waits until the broker has it, or until ctx ends.
// When ctx ends first the record may still be delivered: callers that need
// an outcome stored exactly once must not treat that as a failure to send.
func (p *Producer) Send(ctx context.Context, msg *kafka.Message) error {
	delivered := make(chan kafka.Event, 1)
	if err := p.produce(ctx, msg, delivered); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	case e := <-delivered:
		m, ok := e.(*kafka.Message)
		if !ok {
			return domain.Unavailable("kafka", fmt.Errorf("unexpected delivery event %v", e))
		}
		return deliveryError(m)
	}
}

// SendAll produces msgs at once and waits until the broker has
// acknowledged each, or until ctx ends. It returns one error per message,
// in order: nil for each the broker acknowledged. A message that cannot
// be queued fails alone; the others are still sent. msgs are not changed.
//
// Records of one partition are written in the order given unless one of
// them fails: librdkafka may then write those after it (a gap after a
// timeout). Callers that need a key's records in order send its next one
// only once the previous one is acknowledged. When ctx ends first, the
// messages not yet acknowledged fail with ctx's error and may still be
// delivered.
func (p *Producer) SendAll(ctx context.Context, msgs []*kafka.Message) []error {
	errs := make([]error, len(msgs))
	if err := ctx.Err(); err != nil {
		for i := range errs {
			errs[i] = err
		}
		return errs
	}
	reported := make([]bool, len(msgs))
	delivered := make(chan kafka.Event, len(msgs)) // never blocks librdkafka
	pending := 0
	for i, msg := range msgs {
		m := *msg
		m.Opaque = i
		if errs[i] = p.produce(ctx, &m, delivered); errs[i] != nil {
			reported[i] = true
			continue
		}
		pending++
	}
	for pending > 0 {
		select {
		case <-ctx.Done():
			for i := range errs {
				if !reported[i] {
					errs[i] = ctx.Err()
				}
			}
			return errs
		case e := <-delivered:
			m, ok := e.(*kafka.Message)
			if !ok {
				continue
			}
			i, ok := m.Opaque.(int)
			if !ok || i < 0 || i >= len(msgs) || reported[i] {
				continue
			}
			errs[i], reported[i] = deliveryError(m), true
			pending--
		}
	}
	return errs
}

// produce queues msg, waiting for room while the local queue is full, as a
// blocking send would, or until ctx ends.
func (p *Producer) produce(ctx context.Context, msg *kafka.Message, delivered chan kafka.Event) error {
	for {
		err := p.p.Produce(msg, delivered)
		if err == nil {
			return nil
		}
		var kerr kafka.Error
		if !errors.As(err, &kerr) || kerr.Code() != kafka.ErrQueueFull {
			return domain.Unavailable("kafka", fmt.Errorf("produce to %s: %w", topicOf(msg.TopicPartition), err))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
}

// deliveryError is the outcome of a delivery report: nil when the broker
// acknowledged the record.
func deliveryError(m *kafka.Message) error {
	if m.TopicPartition.Error != nil {
		return domain.Unavailable("kafka", fmt.Errorf("deliver to %s: %w", topicOf(m.TopicPartition), m.TopicPartition.Error))
	}
	return nil
}

// Ping checks that the brokers answer a metadata request before ctx's
// deadline, or within two seconds when it has none. It returns
// CodeUnavailable when they do not.
func (p *Producer) Ping(ctx context.Context) error {
	timeout := 2 * time.Second
	if d, ok := ctx.Deadline(); ok {
		timeout = time.Until(d)
	}
	if _, err := p.p.GetMetadata(nil, false, int(timeout.Milliseconds())); err != nil {
		return domain.Unavailable("kafka", err)
	}
	return nil
}

// Admin returns an admin client sharing the producer's connections. Close
// it before the producer.
func (p *Producer) Admin() (*kafka.AdminClient, error) {
	return kafka.NewAdminClientFromProducer(p.p)
}

// Close waits up to FlushTimeout for queued records, then closes the
// producer. It is safe to call more than once.
func (p *Producer) Close() {
	p.closeOnce.Do(func() {
		if left := p.p.Flush(int(p.cfg.FlushTimeout.Milliseconds())); left > 0 {
			p.cfg.Logger.Error("records left unsent at close", "count", left)
		}
		p.p.Close()
		<-p.done
		p.logs.Close()
	})
}

func topicOf(tp kafka.TopicPartition) string {
	if tp.Topic == nil {
		return ""
	}
	return *tp.Topic
}
