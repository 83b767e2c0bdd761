package main

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"
	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
	"github.com/authworker/authworker/testenv"
)

// TestExpiredLoginsCostNoHash: logins that waited on the topic past their
// deadline, as behind a worker that was down, are all answered
// DEADLINE_EXCEEDED without a single password hash, and store nothing. The
// hasher's own count is the proof; one live login afterwards shows that
// the count moves.
func TestExpiredLoginsCostNoHash(t *testing.T) {
	const logins = 200
	bootstrap := testenv.KafkaBootstrap(t)
	reqTopic, replyTopic := testenv.Name(t, "req"), testenv.Name(t, "resp")
	createTopics(t, bootstrap, 3, reqTopic, replyTopic)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}

	deadline := time.Now().Add(time.Second)
	msgs := make([]*kafka.Message, logins)
	ids := make([]string, logins)
	for i := range msgs {
		email := fmt.Sprintf("late%d@example.com", i%20)
		ids[i] = testenv.Unique(fmt.Sprintf("late-%d-", i))
		msgs[i] = requestMessage(t, codec, reqTopic, replyTopic, email, ids[i], &deadline, &schemas.Login{Email: email, Password: password})
	}
	produceAll(t, bootstrap, msgs)
	time.Sleep(time.Until(deadline))

	w := startWorker(t, "AUTH_REQUEST_TOPIC="+reqTopic, "AUTH_RESPONSE_TOPIC="+replyTopic)
	replies := readReplyLog(t, bootstrap, replyTopic)
	replies.waitFor(t, ids, 2*time.Minute)
	for _, id := range ids {
		for _, m := range replies.replies(id) {
			if resp := replies.decode(t, m); resp.Status != schemas.StatusDeadlineExceeded || resp.RequestID != id {
				t.Fatalf("request %s: reply %s to %s, want DEADLINE_EXCEEDED", id, resp.Status, resp.RequestID)
			}
		}
	}
	if n := w.main.hasher.Computed(); n != 0 {
		t.Errorf("%d password hashes computed for %d expired logins, want none", n, logins)
	}
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, w.cfg.Postgres.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var stored int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM request_outcomes`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != 0 {
		t.Errorf("%d outcomes stored for expired logins, want none", stored)
	}

	// The control: a live login for an unknown address costs its dummy
	// verification, and the count shows it.
	_, err = w.client(t).Login(ctx, "late0@example.com", password)
	if domain.ErrorCode(err) != domain.CodeUnauthorized {
		t.Fatalf("live login: %v, want UNAUTHORIZED", err)
	}
	if n := w.main.hasher.Computed(); n != 1 {
		t.Errorf("%d password hashes computed after one live login, want 1", n)
	}
}

// rssMarginMiB is how far a draining worker's resident set may rise above
// its peak while draining a warm-up backlog a tenth the size: room for the
// Go collector's headroom (the test runs the worker with GOGC=25: about
// 8 MiB) and librdkafka's prefetch (capped at 1 MiB here), but not for the
// backlog, 21 MiB of records, held in memory.
const rssMarginMiB = 16

// TestBacklogDrainsWithFlatRSS: a worker finds a backlog of 100 times its
// in-flight bound (AUTH_WORKERS × (1 + AUTH_QUEUE_DEPTH)) of cheap
// requests, Introspect with a 6 KiB bogus token (21 MiB in all), and
// answers every one while its resident set stays within rssMarginMiB of
// its peak while draining a warm-up backlog of 10 times the bound. Each
// backlog is produced while the process is stopped (SIGSTOP), so that it
// finds all of it at once when it continues.
func TestBacklogDrainsWithFlatRSS(t *testing.T) {
	const (
		workers, depth = 4, 8
		bound          = workers * (1 + depth)
		backlog        = 100 * bound
		warmup         = 10 * bound
		tokenSize      = 6 << 10
	)
	pw := newProcessWorker(t,
		fmt.Sprintf("AUTH_WORKERS=%d", workers),
		fmt.Sprintf("AUTH_QUEUE_DEPTH=%d", depth),
		// librdkafka's prefetch is its own bounded buffer (64 MiB by
		// default), not the engine's; capped, so that what is measured
		// is the engine.
		"KAFKA_QUEUED_MAX_MESSAGES_KBYTES=1024",
		// The worker's live heap is some 31 MiB (mostly the password
		// blocklists); at the default GOGC=100 the collector lets it grow
		// by as much again before collecting, which would hide a backlog
		// held in memory. At 25 its headroom is some 8 MiB.
		"GOGC=25",
	)
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	batch := func(n int, prefix string) ([]*kafka.Message, []string) {
		msgs, ids := make([]*kafka.Message, n), make([]string, n)
		token := strings.Repeat("x", tokenSize)
		for i := range msgs {
			ids[i] = fmt.Sprintf("%s-%d", prefix, i)
			msgs[i] = requestMessage(t, codec, pw.request, pw.reply, "", ids[i], nil, &schemas.Introspect{Token: token})
		}
		return msgs, ids
	}
	replies := readReplyLog(t, pw.bootstrap, pw.reply)
	p := pw.start(t)
	waitFor(t, "the worker to be ready", func() bool { return ready(pw.httpAddr) })
	pid := p.cmd.Process.Pid

	// drain makes a backlog of n requests while the worker is stopped, lets
	// it go on, and samples its resident set until every one is answered.
	drain := func(n int, prefix string) (samples []int, took time.Duration) {
		msgs, ids := batch(n, prefix)
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		produceAll(t, pw.bootstrap, msgs)
		if err := p.cmd.Process.Signal(syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		drained := make(chan error, 1)
		go func() { drained <- replies.await(ids, 3*time.Minute) }()
		for {
			kib, err := rssKiB(pid)
			if err != nil {
				t.Fatal(err)
			}
			samples = append(samples, kib)
			select {
			case err := <-drained:
				if err != nil {
					t.Fatal(err)
				}
				for _, id := range ids {
					if resp := replies.decode(t, replies.replies(id)[0]); resp.Status != schemas.StatusOK {
						t.Fatalf("request %s answered %s, want OK (active: false)", id, resp.Status)
					}
				}
				return samples, time.Since(start)
			case <-time.After(20 * time.Millisecond):
			}
		}
	}

	warm, _ := drain(warmup, testenv.Unique("warm"))
	settled := slices.Max(warm)
	samples, took := drain(backlog, testenv.Unique("backlog"))
	peak := slices.Max(samples)
	t.Logf("backlog of %d (%d × the bound of %d) drained in %v; RSS peaked at %d KiB draining a warm-up backlog of %d, at %d KiB draining this one (+%d KiB) over %d samples",
		backlog, backlog/bound, bound, took.Round(time.Millisecond), settled, warmup, peak, peak-settled, len(samples))
	var series []string
	for i := 0; i < len(samples); i += max(1, len(samples)/20) {
		series = append(series, fmt.Sprint(samples[i]-settled))
	}
	t.Logf("RSS above settled, KiB, through the drain: %s", strings.Join(series, " "))
	if peak > settled+rssMarginMiB<<10 {
		t.Errorf("RSS peaked at %d KiB while draining, over %d KiB settled + %d MiB", peak, settled, rssMarginMiB)
	}
	p.stop(t, syscall.SIGTERM)
}
