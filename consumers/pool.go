// Package consumers reads auth requests from Kafka and answers them: a pool
// of workers fed by one poll loop, records of one key kept in order, any
// idle worker taking the oldest record whose key has nothing running, and
// consumer offsets stored only behind records whose outcome is durable.
package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
)

// Handler processes one record. It returns nil once the record's outcome is
// durable (its reply or dead letter acknowledged by the broker); only then
// may the record's offset be committed. An error means the outcome is not
// durable yet: the pool retries the record with backoff until it succeeds,
// its partition is revoked or the pool stops, and then the record is
// consumed again by the partition's next owner.
//
// Handle must return soon after ctx ends. A handler that does not is
// abandoned at shutdown (its goroutine is left running, its record is
// consumed again), so that Run still returns.
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
	// same key run one at a time, in order; any idle worker takes the
	// oldest record whose key has nothing running. Default 32: handlers
	// spend most of their time waiting (for the stores, the broker, a
	// password-hashing slot), so there are many more of them than CPUs;
	// what is CPU-bound is bounded where it runs.
	Workers int
	// QueueDepth is how many records may wait per worker, dispatched and
	// not started, before the poll loop stops fetching: the pool holds at
	// most Workers × (1 + QueueDepth) records, in hand or waiting.
	// Default 4.
	QueueDepth int
	// DrainTimeout bounds how long records in hand may take to finish when
	// their partitions are revoked or the pool stops; then their context is
	// cancelled. Default 15 seconds.
	DrainTimeout time.Duration

	// InstanceID makes the consumer a static member of its group
	// (group.instance.id): a member that restarts with the same id gets
	// its partitions back at once, without a rebalance, and one that does
	// not come back keeps them until its session times out. Each member of
	// a group needs an id of its own; a second member with the same id
	// fences the first. Empty: a dynamic member.
	InstanceID string

	// Kafka holds further librdkafka settings; they override the
	// defaults, except the offset-management ones the pool relies on.
	// partition.assignment.strategy, if set, must be cooperative-sticky;
	// with group.protocol=consumer (KIP-848) it, and the session and
	// heartbeat settings, must be left to the broker.
	Kafka  map[string]string
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultGroupID      = "authworker"
	DefaultWorkers      = 32
	DefaultQueueDepth   = 4
	DefaultDrainTimeout = 15 * time.Second
	// DefaultStaticSessionTimeout is the session timeout of a static
	// member under the classic protocol, unless session.timeout.ms is set:
	// how long a member that crashed and does not come back keeps its
	// partitions unserved. One that restarts sooner takes them back at
	// once, and one that restarts later only rejoins, so it is short: a
	// few of librdkafka's 3 s heartbeats, well above the broker's least
	// (group.min.session.timeout.ms, 6 s).
	DefaultStaticSessionTimeout = 10 * time.Second
	// DefaultCommitInterval is how often the offsets stored behind durable
	// outcomes are committed (auto.commit.interval.ms), unless the Kafka
	// settings say otherwise: what a crash replays.
	DefaultCommitInterval = time.Second
	// DefaultPrefetchKiB is how much librdkafka fetches ahead of the pool
	// (queued.max.messages.kbytes), unless the Kafka settings say
	// otherwise: 4 MiB, some ten thousand requests.
	DefaultPrefetchKiB = 4096
)

func (c *Config) setDefaults() {
	if c.GroupID == "" {
		c.GroupID = DefaultGroupID
	}
	if c.Workers == 0 {
		c.Workers = DefaultWorkers
	}
	if c.QueueDepth == 0 {
		c.QueueDepth = DefaultQueueDepth
	}
	if c.DrainTimeout == 0 {
		c.DrainTimeout = DefaultDrainTimeout
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
	if err := c.validatePool(); err != nil {
		return err
	}
	if _, ok := c.Kafka["group.instance.id"]; ok {
		return errors.New("group.instance.id is the pool's instance id: set that instead")
	}
	if c.InstanceID != "" {
		if err := ValidateInstanceID(c.InstanceID); err != nil {
			return fmt.Errorf("instance id %w", err)
		}
	}
	if c.Kafka["group.protocol"] == "consumer" {
		// KIP-848: the broker assigns, incrementally, and owns the
		// session; librdkafka refuses these, less clearly.
		for _, name := range []string{"partition.assignment.strategy", "session.timeout.ms", "heartbeat.interval.ms", "group.protocol.type"} {
			if _, ok := c.Kafka[name]; ok {
				return fmt.Errorf("%s cannot be set with group.protocol=consumer (KIP-848): the broker decides it (its group.consumer.* settings; the assignor with group.remote.assignor)", name)
			}
		}
		return nil
	}
	// The rebalance callback acknowledges assignments incrementally.
	if s, ok := c.Kafka["partition.assignment.strategy"]; ok && s != "cooperative-sticky" {
		return fmt.Errorf("partition.assignment.strategy must be cooperative-sticky, got %q", s)
	}
	return nil
}

// ValidateInstanceID reports whether id is a group instance id the broker
// accepts: its rule for the names of topics and groups.
func ValidateInstanceID(id string) error {
	ok := len(id) > 0 && len(id) <= 249
	for _, r := range id {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-')
	}
	if !ok {
		return fmt.Errorf("%q must be 1 to 249 letters, digits, '.', '_' or '-'", id)
	}
	return nil
}

// validatePool checks the settings of the pool itself, which a pool given
// its consumer needs too.
func (c Config) validatePool() error {
	switch {
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

const (
	// dispatchStall is how long a full pool may keep the poll loop from
	// polling. Past it the fetching partitions are paused and the loop
	// polls while it waits, so that rebalances are served and
	// max.poll.interval.ms is never exceeded however long a handler takes.
	dispatchStall = 500 * time.Millisecond
	// pausedPoll is how often the loop polls while partitions are paused.
	pausedPoll = 100 * time.Millisecond
	// abandonGrace is how long handlers get to return once their context
	// was cancelled at shutdown, before they are abandoned.
	abandonGrace = time.Second

	firstBackoff = 50 * time.Millisecond
	maxBackoff   = 5 * time.Second
)

// Pool consumes records with a consumer group and hands them to a Handler.
type Pool struct {
	cfg      Config
	handler  Handler
	consumer Consumer
	stall    time.Duration // dispatchStall; shorter in tests
	started  atomic.Bool

	// mu guards partitions and closed. It is read-held while an offset is
	// stored, so none is stored for a partition once it is revoked, nor
	// once the consumer is closed.
	mu         sync.RWMutex
	partitions map[partitionKey]*partitionOffsets
	closed     bool

	// Owned by the goroutine running Run: the poll loop and the rebalance
	// callback, which librdkafka only calls from within Poll and Close.
	workCtx  context.Context // parent of every partition's handler context
	closing  bool            // the workers are done; the consumer leaves its group
	backlog  []job           // fetched, not dispatched yet, in fetch order
	fetching map[partitionKey]kafka.TopicPartition
	paused   map[partitionKey]kafka.TopicPartition
	isPaused bool

	// Set by Run before the first worker starts, for idle records (see
	// idle) to start workers that stand in for them.
	runCtx  context.Context
	sched   *scheduler
	workers sync.WaitGroup
	// turns holds a token for each record being worked on: at most
	// Workers, idle records not counted (see idle).
	turns chan struct{}
	// crew guards live, the worker goroutines, and idling, the records
	// idle in them.
	crew   sync.Mutex
	live   int
	idling int

	// What Stats reports, so any goroutine may read it. The poll loop
	// writes it; the workers lower inFlight too.
	inFlight     atomic.Int64 // records queued behind their key or in hand
	peakInFlight atomic.Int64
	backlogLen   atomic.Int64
	peakBacklog  atomic.Int64
	pausedLen    atomic.Int64
	pauses       atomic.Int64
	// joined is set by the first assignment, even an empty one: from then
	// on the group has decided what this member serves.
	joined atomic.Bool
}

// Stats is a snapshot of how busy a pool is, for metrics and readiness.
type Stats struct {
	// InFlight is the number of records handed to the workers and not
	// finished: in hand, or queued behind a record of their key.
	InFlight int
	// PeakInFlight is the most records that were in flight at once.
	PeakInFlight int
	// Backlog is the number of records fetched and waiting for room in
	// the pool.
	Backlog int
	// PeakBacklog is the longest the backlog was.
	PeakBacklog int
	// Paused is the number of partitions whose fetching is paused because
	// the pool stayed full.
	Paused int
	// Pauses is how many times fetching was paused since Run started.
	Pauses int
	// Assigned is the number of partitions assigned to this member.
	Assigned int
	// Joined reports whether the group has given this member an
	// assignment since Run started, even an empty one (every partition
	// owned by other members): until then it serves nothing, whatever
	// the group decides.
	Joined bool
}

// Stats returns the pool's current load. It is safe to call at any time,
// from any goroutine.
func (p *Pool) Stats() Stats {
	p.mu.RLock()
	assigned := len(p.partitions)
	p.mu.RUnlock()
	return Stats{
		InFlight:     int(p.inFlight.Load()),
		PeakInFlight: int(p.peakInFlight.Load()),
		Backlog:      int(p.backlogLen.Load()),
		PeakBacklog:  int(p.peakBacklog.Load()),
		Paused:       int(p.pausedLen.Load()),
		Pauses:       int(p.pauses.Load()),
		Assigned:     assigned,
		Joined:       p.joined.Load(),
	}
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

// job is a fetched record and the tracker of the assignment it was fetched
// under.
type job struct {
	msg     *kafka.Message
	offsets *partitionOffsets
}

// NewPool creates a librdkafka consumer and a pool around it. Nothing is
// consumed until Run.
func NewPool(cfg Config, handler Handler) (*Pool, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	c, err := newKafkaConsumer(cfg)
	if err != nil {
		return nil, err
	}
	return newPool(cfg, c, handler), nil
}

// NewPoolWithConsumer creates a pool around a consumer made by the caller,
// which configured it as NewPool would: a subscribing consumer whose offsets
// are stored by the pool only. BootstrapServers, GroupID and Kafka in cfg
// are not used. Run closes the consumer. Nothing is consumed until Run.
func NewPoolWithConsumer(cfg Config, consumer Consumer, handler Handler) (*Pool, error) {
	cfg.setDefaults()
	if err := cfg.validatePool(); err != nil {
		return nil, err
	}
	return newPool(cfg, consumer, handler), nil
}

func newPool(cfg Config, consumer Consumer, handler Handler) *Pool {
	return &Pool{
		cfg:        cfg,
		handler:    handler,
		consumer:   consumer,
		stall:      dispatchStall,
		partitions: map[partitionKey]*partitionOffsets{},
		fetching:   map[partitionKey]kafka.TopicPartition{},
		paused:     map[partitionKey]kafka.TopicPartition{},
	}
}

// Run consumes until ctx ends or the consumer fails for good, then lets the
// records in hand finish (within DrainTimeout), commits, leaves the group
// and closes the consumer. Records fetched but not started are left for the
// next owner of their partition. Run may be called once.
func (p *Pool) Run(ctx context.Context) error {
	if !p.started.CompareAndSwap(false, true) {
		return errors.New("consumer pool already ran")
	}
	// Handlers see workCtx (through their partition's context): it outlives
	// ctx by up to DrainTimeout, so records in hand can finish.
	workCtx, cancelWork := context.WithCancel(context.WithoutCancel(ctx))
	defer cancelWork()
	p.workCtx = workCtx
	runCtx, stopRun := context.WithCancel(ctx)
	defer stopRun()

	if err := p.consumer.SubscribeTopics(p.cfg.Topics, p.rebalance); err != nil {
		p.close()
		return fmt.Errorf("subscribe to %v: %w", p.cfg.Topics, err)
	}

	sched := newScheduler(p.cfg.Workers * (1 + p.cfg.QueueDepth))
	p.runCtx, p.sched = runCtx, sched
	p.turns = make(chan struct{}, p.cfg.Workers)
	p.live = p.cfg.Workers
	for range p.cfg.Workers {
		p.workers.Go(func() { p.work(runCtx, sched) })
	}

	err := p.poll(runCtx, sched)
	stopRun() // after a fatal error too: workers stop taking records
	clear(p.backlog)
	p.backlog = p.backlog[:0]
	p.noteBacklog()
	sched.close()
	p.drain(&p.workers, cancelWork)
	p.commit()
	p.close()
	return err
}

// poll fetches records and dispatches them until ctx ends or the consumer
// fails for good.
func (p *Pool) poll(ctx context.Context, sched *scheduler) error {
	for ctx.Err() == nil {
		if len(p.backlog) == 0 {
			p.resume()
			if err := p.serve(100); err != nil {
				return err
			}
			continue
		}
		wait := p.stall
		if p.isPaused {
			wait = pausedPoll
		}
		if p.dispatch(ctx, sched, wait) {
			continue
		}
		if ctx.Err() != nil {
			break
		}
		// The pool stays full: stop fetching, and keep polling for
		// rebalances while the workers catch up.
		p.pause()
		if err := p.serve(0); err != nil {
			return err
		}
	}
	return nil
}

// serve polls the consumer, waiting at most timeoutMs for the first event,
// and handles what it gets until a record arrives or nothing is ready.
// Rebalance callbacks run in here.
func (p *Pool) serve(timeoutMs int) error {
	for range 64 {
		switch e := p.consumer.Poll(timeoutMs).(type) {
		case nil:
			return nil
		case *kafka.Message:
			if e.TopicPartition.Error != nil {
				k := keyOf(e.TopicPartition)
				p.cfg.Logger.Warn("consume error", "topic", k.topic, "partition", k.partition, "err", e.TopicPartition.Error)
				continue
			}
			p.take(e)
			return nil
		case kafka.Error:
			if e.IsFatal() {
				return fmt.Errorf("kafka consumer: %w", e)
			}
			// Transient: librdkafka reconnects on its own.
			p.cfg.Logger.Warn("kafka consumer error", "err", e)
		case kafka.OffsetsCommitted:
			if e.Error != nil {
				p.cfg.Logger.Warn("commit offsets", "err", e.Error)
			}
		}
		timeoutMs = 0
	}
	return nil
}

// take queues a fetched record for dispatch.
func (p *Pool) take(msg *kafka.Message) {
	k := keyOf(msg.TopicPartition)
	p.mu.RLock()
	o := p.partitions[k]
	p.mu.RUnlock()
	if o == nil {
		// Not (or no longer) assigned here: its owner reads it.
		p.cfg.Logger.Debug("record for a partition not assigned; dropped", "topic", k.topic, "partition", k.partition)
		return
	}
	p.backlog = append(p.backlog, job{msg: msg, offsets: o})
	p.noteBacklog()
	if _, ok := p.fetching[k]; !ok {
		p.fetching[k] = kafka.TopicPartition{Topic: msg.TopicPartition.Topic, Partition: k.partition}
		if p.isPaused {
			p.pause() // a partition assigned while paused: it fetches no more either
		}
	}
}

// dispatch hands the oldest fetched record to the workers, waiting at most
// wait for room. It reports whether the record was dispatched.
func (p *Pool) dispatch(ctx context.Context, sched *scheduler, wait time.Duration) bool {
	j := p.backlog[0]
	j.offsets.add(int64(j.msg.TopicPartition.Offset))
	if !sched.offer(ctx, j, wait) {
		return false
	}
	p.backlog[0] = job{}
	p.backlog = append(p.backlog[:0], p.backlog[1:]...)
	p.noteBacklog()
	if n := p.inFlight.Add(1); n > p.peakInFlight.Load() {
		p.peakInFlight.Store(n) // only the poll loop raises it
	}
	return true
}

// noteBacklog publishes the backlog's length to Stats.
func (p *Pool) noteBacklog() {
	n := int64(len(p.backlog))
	p.backlogLen.Store(n)
	if n > p.peakBacklog.Load() {
		p.peakBacklog.Store(n) // only the poll loop raises it
	}
}

// pause stops fetching from every partition that delivers records.
// librdkafka drops what it prefetched for them and, on resume, fetches again
// from the record after the last one Poll returned, so nothing is skipped.
// Partitions that have not delivered yet are left alone (pausing one before
// it starts can race with its fetch start) and paused when they deliver.
func (p *Pool) pause() {
	var tps []kafka.TopicPartition
	for k, tp := range p.fetching {
		if _, ok := p.paused[k]; !ok {
			p.paused[k] = tp
			tps = append(tps, tp)
		}
	}
	p.pausedLen.Store(int64(len(p.paused)))
	if !p.isPaused {
		p.isPaused = true
		p.pauses.Add(1)
		p.cfg.Logger.Debug("workers busy; fetching paused", "backlog", len(p.backlog))
	}
	if len(tps) > 0 {
		if err := p.consumer.Pause(tps); err != nil {
			p.cfg.Logger.Warn("pause partitions", "err", err)
		}
	}
}

// resume undoes pause.
func (p *Pool) resume() {
	if !p.isPaused {
		return
	}
	p.isPaused = false
	p.resumePartitions(func(partitionKey) bool { return true })
	p.cfg.Logger.Debug("fetching resumed")
}

// resumePartitions resumes the paused partitions that match.
func (p *Pool) resumePartitions(match func(partitionKey) bool) {
	var tps []kafka.TopicPartition
	for k, tp := range p.paused {
		if match(k) {
			tps = append(tps, tp)
			delete(p.paused, k)
		}
	}
	p.pausedLen.Store(int64(len(p.paused)))
	if len(tps) > 0 {
		if err := p.consumer.Resume(tps); err != nil {
			p.cfg.Logger.Warn("resume partitions", "err", err)
		}
	}
}

// work handles records as the scheduler hands them out. Once ctx ends it
// finishes the record in hand and skips the rest.
func (p *Pool) work(ctx context.Context, sched *scheduler) {
	for {
		j, q, ok := sched.next()
		if !ok {
			return
		}
		p.turns <- struct{}{}
		p.run(ctx, j)
		<-p.turns
		p.inFlight.Add(-1) // before done makes room for another
		if dropped := sched.done(q); dropped > 0 {
			p.inFlight.Add(-int64(dropped)) // at shutdown: left for the next owner
		}
		if p.retire() {
			return
		}
	}
}

// run handles one record, unless the pool is stopping or the record's
// partition was revoked: then it stays uncommitted, for the next owner.
func (p *Pool) run(ctx context.Context, j job) {
	o := j.offsets
	if ctx.Err() != nil || !o.start() {
		return
	}
	ok := p.handle(ctx, o, j.msg)
	o.finish(int64(j.msg.TopicPartition.Offset), ok, func(next int64) { p.store(j.msg.TopicPartition, o, next) })
}

// handle runs the handler until it succeeds, backing off between attempts.
// It reports false when it gave up: the pool is stopping, or the record's
// partition was revoked.
func (p *Pool) handle(ctx context.Context, o *partitionOffsets, msg *kafka.Message) bool {
	backoff := firstBackoff
	for {
		err := p.handler.Handle(p.recordContext(o.ctx), msg)
		if err == nil {
			return true
		}
		if ctx.Err() != nil || o.ctx.Err() != nil {
			return false
		}
		k := keyOf(msg.TopicPartition)
		p.cfg.Logger.Warn("record not handled, retrying", "topic", k.topic, "partition", k.partition,
			"offset", int64(msg.TopicPartition.Offset), "backoff", backoff, "err", err)
		t := time.NewTimer(backoff)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return false
		case <-o.stopping():
			t.Stop()
			return false
		}
		backoff = min(2*backoff, maxBackoff)
	}
}

// store stores the next offset to commit, unless the partition was revoked
// (and perhaps reassigned) since the record was dispatched, or the consumer
// is closed.
func (p *Pool) store(tp kafka.TopicPartition, o *partitionOffsets, next int64) {
	k := keyOf(tp)
	p.mu.RLock()
	defer p.mu.RUnlock()
	if p.closed || p.partitions[k] != o {
		return
	}
	tp.Offset = kafka.Offset(next)
	if _, err := p.consumer.StoreOffsets([]kafka.TopicPartition{tp}); err != nil {
		p.cfg.Logger.Warn("store offset", "topic", k.topic, "partition", k.partition, "offset", next, "err", err)
	}
}

// rebalance runs in the poll loop (and in Close). The pool acknowledges
// every rebalance itself, incrementally: left to confluent-kafka-go, the
// acknowledgement asks librdkafka for the rebalance protocol, which can hang
// once the consumer is closing (confluent-kafka-go#1016), and reports a
// failed assign on the events channel, which is nil for a polling consumer,
// blocking Poll for ever.
func (p *Pool) rebalance(ev kafka.Event) {
	switch e := ev.(type) {
	case kafka.AssignedPartitions:
		p.assigned(e.Partitions)
	case kafka.RevokedPartitions:
		p.revoked(e.Partitions)
	}
}

func (p *Pool) assigned(partitions []kafka.TopicPartition) {
	if !p.closing {
		p.mu.Lock()
		for _, tp := range partitions {
			p.partitions[keyOf(tp)] = newPartitionOffsets(p.workCtx)
		}
		p.mu.Unlock()
	}
	if err := p.consumer.IncrementalAssign(partitions); err != nil {
		p.cfg.Logger.Error("assign partitions", "count", len(partitions), "err", err)
		return
	}
	p.joined.Store(true)
	p.cfg.Logger.Info("partitions assigned", "count", len(partitions))
}

// revoked lets the revoked partitions' records in hand finish (within
// DrainTimeout) and store their offsets before the partitions are
// unassigned, which commits the stored offsets before the group moves them:
// the next owner starts right after the last durable outcome. Records
// queued but not started are skipped, and failing ones are not retried;
// the next owner reads them.
func (p *Pool) revoked(partitions []kafka.TopicPartition) {
	lost := p.consumer.AssignmentLost()
	revoked := make(map[partitionKey]bool, len(partitions))
	for _, tp := range partitions {
		revoked[keyOf(tp)] = true
	}
	p.backlog = dropRevoked(p.backlog, revoked)
	p.noteBacklog()

	p.mu.RLock()
	trackers := make(map[partitionKey]*partitionOffsets, len(revoked))
	for k := range revoked {
		if o := p.partitions[k]; o != nil {
			trackers[k] = o
		}
	}
	p.mu.RUnlock()

	drained := make(map[partitionKey]<-chan struct{}, len(trackers))
	for k, o := range trackers {
		drained[k] = o.stop()
	}
	// Another member may own lost partitions already: do not wait. At
	// shutdown the workers are done already.
	if !lost && !p.closing {
		timeout := time.NewTimer(p.cfg.DrainTimeout)
		defer timeout.Stop()
	wait:
		for k, ch := range drained {
			select {
			case <-ch:
			case <-timeout.C:
				busy := 0
				for _, o := range trackers {
					busy += o.inFlight()
				}
				p.cfg.Logger.Warn("revoked partitions still busy; their records in hand will be consumed again",
					"topic", k.topic, "in_flight", busy, "drain_timeout", p.cfg.DrainTimeout)
				break wait
			}
		}
	}
	p.mu.Lock()
	for k := range trackers {
		delete(p.partitions, k)
	}
	p.mu.Unlock()
	for _, o := range trackers {
		o.cancel()
	}

	// librdkafka keeps a partition's pause across assignments.
	p.resumePartitions(func(k partitionKey) bool { return revoked[k] })
	for k := range revoked {
		delete(p.fetching, k)
	}
	if err := p.consumer.IncrementalUnassign(partitions); err != nil {
		p.cfg.Logger.Error("unassign partitions", "count", len(partitions), "err", err)
	}
	p.cfg.Logger.Info("partitions revoked", "count", len(partitions), "lost", lost)
}

// dropRevoked removes the records of revoked partitions, keeping the order
// of the others.
func dropRevoked(backlog []job, revoked map[partitionKey]bool) []job {
	kept := backlog[:0]
	for _, f := range backlog {
		if !revoked[keyOf(f.msg.TopicPartition)] {
			kept = append(kept, f)
		}
	}
	clear(backlog[len(kept):])
	return kept
}

// drain waits for the workers: records in hand get DrainTimeout to finish,
// then their context is cancelled, and after abandonGrace more the handlers
// that still have not returned are abandoned.
func (p *Pool) drain(workers *sync.WaitGroup, cancelWork context.CancelFunc) {
	done := make(chan struct{})
	go func() {
		workers.Wait()
		close(done)
	}()
	t := time.NewTimer(p.cfg.DrainTimeout)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	cancelWork()
	t.Reset(abandonGrace)
	select {
	case <-done:
	case <-t.C:
		p.cfg.Logger.Error("handlers ignore cancellation; abandoned, their records will be consumed again",
			"in_flight", p.inFlight.Load())
	}
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

// Close releases the consumer of a pool that never ran, such as one built
// by a start-up that failed later; Run closes its own. It is safe to call
// more than once, and after Run.
func (p *Pool) Close() {
	if p.started.CompareAndSwap(false, true) {
		p.close()
	}
}

// close closes the consumer, which leaves the group. Closing revokes the
// assignment through the rebalance callback, which then only acknowledges
// it: the workers are done. No worker stores an offset after close.
func (p *Pool) close() {
	p.closing = true
	p.mu.Lock()
	p.closed = true
	trackers := make([]*partitionOffsets, 0, len(p.partitions))
	for _, o := range p.partitions {
		trackers = append(trackers, o)
	}
	clear(p.partitions)
	p.mu.Unlock()
	for _, o := range trackers {
		o.cancel()
	}
	if err := p.consumer.Close(); err != nil {
		p.cfg.Logger.Warn("close kafka consumer", "err", err)
	}
}
