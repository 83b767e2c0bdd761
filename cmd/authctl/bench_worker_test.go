package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/testenv"
)

// workerProcess is a bin/authworker run by a test, on topics of its own.
type workerProcess struct {
	cmd                    *exec.Cmd
	bootstrap              string
	requestTopic, replyTop string
}

// startWorkerProcess builds the worker and runs it as `make run` does, on
// a database, topics and a consumer group of the test's own, and waits
// until it is ready. It is stopped (SIGTERM) when the test ends.
func startWorkerProcess(t *testing.T) *workerProcess {
	t.Helper()
	db, redisURL, bootstrap := testenv.Database(t), testenv.RedisURL(t), testenv.KafkaBootstrap(t)
	bin := filepath.Join(t.TempDir(), "authworker")
	build := exec.Command("go", "build", "-o", bin, "github.com/authworker/authworker/cmd/authworker")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build the worker: %v\n%s", err, out)
	}
	addr := freeAddr(t)
	w := &workerProcess{bootstrap: bootstrap, requestTopic: testenv.Name(t, "req"), replyTop: testenv.Name(t, "resp")}
	topics := []string{w.requestTopic, w.replyTop, testenv.Name(t, "dlq"), testenv.Name(t, "notify"), testenv.Name(t, "events")}
	w.cmd = exec.Command(bin)
	w.cmd.Env = []string{
		"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME"),
		"DATABASE_URL=" + db, "REDIS_URL=" + redisURL, "KAFKA_BOOTSTRAP_SERVERS=" + bootstrap,
		"HTTP_ADDR=" + addr,
		"AUTH_KEY_ENCRYPTION_KEY=" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 32)),
		"AUTH_REQUEST_TOPIC=" + topics[0], "AUTH_RESPONSE_TOPIC=" + topics[1], "AUTH_REPLY_TOPICS=" + topics[1],
		"AUTH_DLQ_TOPIC=" + topics[2], "AUTH_NOTIFICATIONS_TOPIC=" + topics[3], "AUTH_EVENTS_TOPIC=" + topics[4],
		"AUTH_CONSUMER_GROUP=" + testenv.Name(t, "group"), "AUTH_TOPIC_PARTITIONS=3",
		"LOG_LEVEL=warn",
	}
	var logs bytes.Buffer
	w.cmd.Stdout, w.cmd.Stderr = &logs, &logs
	if err := w.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- w.cmd.Wait() }()
	t.Cleanup(func() {
		w.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				t.Errorf("worker stopped with %v", err)
			}
		case <-time.After(30 * time.Second):
			w.cmd.Process.Kill()
			t.Errorf("worker did not stop within 30s of SIGTERM")
		}
		if t.Failed() {
			t.Logf("worker log:\n%s", logs.String())
		}
		deleteTestTopics(t, bootstrap, topics)
	})
	for deadline := time.Now().Add(60 * time.Second); ; {
		select {
		case err := <-exited:
			t.Fatalf("the worker exited during start-up: %v\n%s", err, logs.String())
		default:
		}
		if resp, err := http.Get("http://" + addr + "/readyz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return w
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the worker was not ready within 60s")
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port nothing listens on.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func deleteTestTopics(t *testing.T, bootstrap string, topics []string) {
	admin, err := kafka.NewAdminClient(&kafka.ConfigMap{"bootstrap.servers": bootstrap})
	if err != nil {
		t.Errorf("delete topics: %v", err)
		return
	}
	defer admin.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := admin.DeleteTopics(ctx, topics); err != nil {
		t.Errorf("delete topics: %v", err)
	}
}

// TestBenchAgainstWorker runs a small open-loop bench of every operation
// against a real worker, and checks that its counts add up: every request
// due is sent or not, every one sent is answered or timed out, the OK
// operations succeed and the wrong passwords are refused.
func TestBenchAgainstWorker(t *testing.T) {
	w := startWorkerProcess(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	const rate, seconds = 10, 4
	var out bytes.Buffer
	args := []string{
		"-bootstrap", w.bootstrap, "-request-topic", w.requestTopic, "-reply-topic", w.replyTop,
		"-client-id", "bench-test", "-timeout", "30s",
		"bench", "-mix", "register=1,login=1,wrong-password=1,refresh=1,introspect=1",
		"-rate", strconv.Itoa(rate), "-warmup", "1s", "-duration", fmt.Sprintf("%ds", seconds), "-users", "8",
		"-argon2", "1s", "-worker-pid", strconv.Itoa(w.cmd.Process.Pid), "-progress", "0", "-json",
	}
	if err := run(ctx, args, nil, &out); err != nil {
		t.Fatalf("bench: %v", err)
	}
	var r benchReport
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("bench -json printed %q: %v", out.String(), err)
	}

	if r.Total.Due != rate*seconds {
		t.Errorf("%d requests due in %ds at %d/s, want %d: the timetable is fixed", r.Total.Due, seconds, rate, rate*seconds)
	}
	var due int64
	for _, op := range r.Ops {
		due += op.Due
		var statuses int64
		for _, n := range op.Statuses {
			statuses += n
		}
		if op.Due != statuses || op.Due != op.Sent+op.NotSent || op.Sent != op.Replied+op.Timeouts+op.Errors {
			t.Errorf("%s: due %d, statuses %d, sent %d + not sent %d, replied %d + timed out %d + errors %d: do not add up",
				op.Op, op.Due, statuses, op.Sent, op.NotSent, op.Replied, op.Timeouts, op.Errors)
		}
		if op.Latency.Count != op.Sent {
			t.Errorf("%s: %d latencies for %d requests sent", op.Op, op.Latency.Count, op.Sent)
		}
		if op.Timeouts != 0 || op.Errors != 0 {
			t.Errorf("%s: %d timeouts and %d errors at %d/s; want none", op.Op, op.Timeouts, op.Errors, rate)
		}
		switch op.Op {
		case opWrongPassword:
			if op.Statuses["UNAUTHORIZED"] == 0 || op.Statuses["OK"] != 0 {
				t.Errorf("wrong passwords: %v, want UNAUTHORIZED only", op.Statuses)
			}
			if op.Latency.P50 < 250 {
				t.Errorf("wrong passwords: p50 %v ms, want at least the 250 ms reply floor", op.Latency.P50)
			}
		default:
			// Drops and idle-session misses are the machine's business;
			// every reply must be OK.
			if op.Statuses["OK"] == 0 || op.Statuses["OK"] != op.Replied {
				t.Errorf("%s: %v, want every reply OK", op.Op, op.Statuses)
			}
		}
	}
	if len(r.Ops) != 5 || due != r.Total.Due {
		t.Errorf("%d operations reported, due %d against a total of %d", len(r.Ops), due, r.Total.Due)
	}
	if r.Argon2 == nil || r.Argon2.PerSecond <= 0 || r.Argon2.MemoryKiB != 19456 || r.Fractions == nil || r.Fractions.Login <= 0 ||
		len(r.Argon2.Runs) != 2 || r.Argon2.Runs[0].When != "before" || r.Argon2.Runs[0].PerSecond <= 0 || r.Argon2.Runs[1].PerSecond <= 0 ||
		r.Argon2.XCrypto == nil || len(r.Argon2.XCrypto.Runs) != 2 || r.Argon2.XCrypto.PerSecond <= 0 || r.Fractions.LoginXCrypto <= 0 {
		t.Errorf("argon2id %+v, fractions %+v: want a rate at the worker's defaults, and login's share of it", r.Argon2, r.Fractions)
	}
	if r.Worker == nil || r.Worker.VmHWMKiB <= 0 || r.Worker.MaxVmRSSKiB <= 0 || r.Worker.MaxVmRSSKiB > r.Worker.VmHWMKiB {
		t.Errorf("worker memory %+v: want its peak RSS, at least the largest RSS sampled", r.Worker)
	}
}
