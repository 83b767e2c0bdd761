package main

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/client"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// Helpers of the tests that prove the consumer engine under failure: they
// speak the wire contract by hand, so that every reply record, duplicates
// included, can be read back byte for byte.

// createTopics creates topics of partitions partitions before any worker
// starts, and deletes them when the test ends.
func createTopics(t *testing.T, bootstrap string, partitions int, names ...string) {
	t.Helper()
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	topics := make([]producers.Topic, len(names))
	for i, name := range names {
		topics[i] = producers.Topic{Name: name, Partitions: partitions, Retention: time.Hour}
	}
	if err := producers.EnsureTopics(ctx, admin, topics); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { deleteTopics(t, bootstrap, names...) })
}

// requestMessage is a request record as a Spring client writes it, keyed by
// key (none when empty), whose correlation id is its request id.
func requestMessage(t *testing.T, codec *schemas.Codec, topic, replyTopic, key, requestID string, deadline *time.Time, op schemas.Operation) *kafka.Message {
	t.Helper()
	value, err := codec.EncodeRequest(&schemas.Request{
		RequestID: requestID,
		Deadline:  deadline,
		Client:    schemas.ClientMetadata{ClientID: "web"},
		Operation: op,
	})
	if err != nil {
		t.Fatal(err)
	}
	m := &kafka.Message{
		TopicPartition: kafka.TopicPartition{Topic: &topic, Partition: kafka.PartitionAny},
		Value:          value,
		Headers: []kafka.Header{
			{Key: schemas.HeaderReplyTopic, Value: []byte(replyTopic)},
			{Key: schemas.HeaderCorrelationID, Value: []byte(requestID)},
		},
	}
	if key != "" {
		m.Key = []byte(key)
	}
	return m
}

// produceAll produces msgs in order, idempotently, and waits until the
// broker acknowledged every one.
func produceAll(t *testing.T, bootstrap string, msgs []*kafka.Message) {
	t.Helper()
	p, err := kafka.NewProducer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "enable.idempotence": true, "acks": "all", "linger.ms": 5,
	})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	delivered := make(chan kafka.Event, len(msgs))
	for _, m := range msgs {
		for {
			err := p.Produce(m, delivered)
			if kerr, ok := errors.AsType[kafka.Error](err); ok && kerr.Code() == kafka.ErrQueueFull {
				time.Sleep(5 * time.Millisecond)
				continue
			}
			if err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	timeout := time.After(time.Minute)
	for range msgs {
		select {
		case e := <-delivered:
			if m, ok := e.(*kafka.Message); ok && m.TopicPartition.Error != nil {
				t.Fatalf("produce: %v", m.TopicPartition.Error)
			}
		case <-timeout:
			t.Fatal("requests not acknowledged within a minute")
		}
	}
}

// replyLog reads a reply topic from its beginning in the background and
// keeps every record by correlation id, duplicates included.
type replyLog struct {
	codec *schemas.Codec

	mu      sync.Mutex
	byID    map[string][]*kafka.Message
	records int
	changed chan struct{} // closed and replaced at each record
}

// readReplyLog starts reading topic, which must exist, until the test ends.
func readReplyLog(t *testing.T, bootstrap, topic string) *replyLog {
	t.Helper()
	c, err := kafka.NewConsumer(&kafka.ConfigMap{
		"bootstrap.servers": bootstrap, "group.id": testenv.Name(t, "replies"), "enable.auto.commit": false,
	})
	if err != nil {
		t.Fatal(err)
	}
	md, err := c.GetMetadata(&topic, false, 10000)
	if err != nil {
		c.Close()
		t.Fatal(err)
	}
	var assignment []kafka.TopicPartition
	for _, p := range md.Topics[topic].Partitions {
		assignment = append(assignment, kafka.TopicPartition{Topic: &topic, Partition: p.ID, Offset: kafka.OffsetBeginning})
	}
	if len(assignment) == 0 {
		c.Close()
		t.Fatalf("reply topic %s has no partitions", topic)
	}
	if err := c.Assign(assignment); err != nil {
		c.Close()
		t.Fatal(err)
	}
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	l := &replyLog{codec: codec, byID: map[string][]*kafka.Message{}, changed: make(chan struct{})}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			m, ok := c.Poll(100).(*kafka.Message)
			if !ok || m.TopicPartition.Error != nil {
				continue
			}
			id := string(headerValue(m, schemas.HeaderCorrelationID))
			l.mu.Lock()
			l.byID[id] = append(l.byID[id], m)
			l.records++
			close(l.changed)
			l.changed = make(chan struct{})
			l.mu.Unlock()
		}
	}()
	t.Cleanup(func() { stop(); <-done; c.Close() })
	return l
}

// answered returns how many correlation ids have at least one reply.
func (l *replyLog) answered() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.byID)
}

// waitFor waits until each of ids has a reply.
func (l *replyLog) waitFor(t *testing.T, ids []string, timeout time.Duration) {
	t.Helper()
	if err := l.await(ids, timeout); err != nil {
		t.Fatal(err)
	}
}

// await waits until each of ids has a reply, for at most timeout.
func (l *replyLog) await(ids []string, timeout time.Duration) error {
	deadline := time.After(timeout)
	for {
		l.mu.Lock()
		missing, first := 0, ""
		for _, id := range ids {
			if len(l.byID[id]) == 0 {
				if missing == 0 {
					first = id
				}
				missing++
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if missing == 0 {
			return nil
		}
		select {
		case <-changed:
		case <-deadline:
			return fmt.Errorf("%d of %d requests unanswered after %v, %s among them", missing, len(ids), timeout, first)
		}
	}
}

// replies returns the replies to correlation id, in the order read.
func (l *replyLog) replies(id string) []*kafka.Message {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]*kafka.Message(nil), l.byID[id]...)
}

// decode decodes a reply's value.
func (l *replyLog) decode(t *testing.T, m *kafka.Message) *schemas.Response {
	t.Helper()
	resp, err := l.codec.DecodeResponse(context.Background(), m.Value)
	if err != nil {
		t.Fatalf("reply at partition %d offset %v: %v", m.TopicPartition.Partition, m.TopicPartition.Offset, err)
	}
	return resp
}

// processWorker is the environment of a worker process of its own, on
// topics and a consumer group of its test.
type processWorker struct {
	env       []string
	bootstrap string
	dbURL     string
	httpAddr  string
	request   string
	reply     string
	logPath   string
}

// newProcessWorker prepares a worker process's environment and creates its
// request and reply topics, so that records can be produced before it
// starts. extra overrides the defaults.
func newProcessWorker(t *testing.T, extra ...string) *processWorker {
	t.Helper()
	w := &processWorker{
		bootstrap: testenv.KafkaBootstrap(t),
		dbURL:     testenv.Database(t),
		httpAddr:  freeAddr(t),
		request:   testenv.Name(t, "req"),
		reply:     testenv.Name(t, "resp"),
		logPath:   filepath.Join(t.TempDir(), "worker.log"),
	}
	others := []string{testenv.Name(t, "dlq"), testenv.Name(t, "notify"), testenv.Name(t, "events")}
	w.env = append([]string{
		"DATABASE_URL=" + w.dbURL,
		"REDIS_URL=" + testenv.RedisURL(t),
		"KAFKA_BOOTSTRAP_SERVERS=" + w.bootstrap,
		"HTTP_ADDR=" + w.httpAddr,
		"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(make([]byte, 32)),
		"AUTH_ISSUER=https://auth.test",
		"AUTH_AUDIENCE=api",
		"AUTH_REQUEST_TOPIC=" + w.request,
		"AUTH_RESPONSE_TOPIC=" + w.reply,
		"AUTH_REPLY_TOPICS=" + w.reply,
		"AUTH_DLQ_TOPIC=" + others[0],
		"AUTH_NOTIFICATIONS_TOPIC=" + others[1],
		"AUTH_EVENTS_TOPIC=" + others[2],
		"AUTH_CONSUMER_GROUP=" + testenv.Name(t, "group"),
		"AUTH_TOPIC_PARTITIONS=3",
		"LOG_LEVEL=warn",
	}, extra...)
	createTopics(t, w.bootstrap, 3, w.request, w.reply)
	t.Cleanup(func() {
		deleteTopics(t, w.bootstrap, others...)
		if t.Failed() {
			if b, err := os.ReadFile(w.logPath); err == nil {
				t.Logf("worker log:\n%s", b)
			}
		}
	})
	return w
}

// newClient is a client of the worker's topics under client id "web",
// closed when the test ends; timeout 0 is the client's default.
func (pw *processWorker) newClient(t testing.TB, timeout time.Duration) *client.Client {
	t.Helper()
	c, err := client.New(context.Background(), client.Config{
		BootstrapServers: pw.bootstrap, ClientID: "web", RequestTopic: pw.request, ReplyTopic: pw.reply, Timeout: timeout,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// start runs one more worker process with this environment, plus extra.
func (w *processWorker) start(t *testing.T, extra ...string) *workerProcess {
	t.Helper()
	return startProcess(t, append(append([]string(nil), w.env...), extra...), w.logPath)
}

// rssKiB returns the resident set size of process pid, in KiB.
func rssKiB(pid int) (int, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strconv.Atoi(strings.TrimSuffix(strings.TrimSpace(v), " kB"))
		}
	}
	return 0, errors.New("no VmRSS line")
}
