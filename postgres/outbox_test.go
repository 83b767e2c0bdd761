package postgres_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/storagetest"
)

// newSealer returns a box under a random key-encryption key, as the worker
// builds it.
func newSealer(tb testing.TB) *seal.Box {
	tb.Helper()
	kek := make([]byte, seal.KeySize)
	_, _ = rand.Read(kek)
	box, err := seal.NewBox(kek, "outbox")
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

func TestOutbox(t *testing.T) {
	storagetest.RunOutboxTests(t, func(t *testing.T) storagetest.OutboxEnv {
		db, _ := openDB(t)
		outbox := postgres.NewOutbox(db, newSealer(t))
		return storagetest.OutboxEnv{
			Tx:     db,
			Outbox: outbox,
			Committed: func(t *testing.T) []domain.OutboxMessage {
				msgs, err := outbox.Pending(context.Background())
				if err != nil {
					t.Fatalf("read the outbox: %v", err)
				}
				return msgs
			},
		}
	})
}

// TestOutboxSealsValuesAtRest: notifications carry one-time codes, so the
// table never holds a value in the clear; what identifies a record (topic,
// key, headers, time) stays readable for operators.
func TestOutboxSealsValuesAtRest(t *testing.T) {
	t.Parallel()
	db, dbURL := openDB(t)
	outbox := postgres.NewOutbox(db, newSealer(t))
	code := []byte("your login code is 918273")
	m := storagetest.NewOutboxMessage("auth.notifications", storagetest.NewUUID(), 1)
	m.Value = code
	ctx := context.Background()
	if err := db.InTx(ctx, func(ctx context.Context) error { return outbox.Enqueue(ctx, m) }); err != nil {
		t.Fatal(err)
	}

	var topic string
	var key, headers, value []byte
	if err := connect(t, dbURL).QueryRow(ctx, `SELECT topic, key, headers, value FROM outbox`).Scan(&topic, &key, &headers, &value); err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(value, code) || bytes.Contains(value, []byte("918273")) {
		t.Errorf("stored value %q holds the code in the clear", value)
	}
	if len(value) <= len(code) {
		t.Errorf("stored value is %d bytes, want more than the %d of the plaintext (nonce and tag)", len(value), len(code))
	}
	if topic != m.Topic || !bytes.Equal(key, m.Key) || !bytes.Contains(headers, []byte("test")) {
		t.Errorf("stored topic %q, key %q, headers %q; want them in the clear", topic, key, headers)
	}
	got, err := outbox.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.CheckOutboxMessages(t, got, []domain.OutboxMessage{m})
}

// TestOutboxOrdersEachKeyByCommit: a transaction that enqueues for a key
// waits for an open one that did, so that a key's ids follow the order in
// which its changes commit; another key does not wait.
func TestOutboxOrdersEachKeyByCommit(t *testing.T) {
	t.Parallel()
	db, dbURL := openDB(t)
	outbox := postgres.NewOutbox(db, newSealer(t))
	ctx := context.Background()
	user := storagetest.NewUUID()
	first := storagetest.NewOutboxMessage("auth.events", user, 1)
	second := storagetest.NewOutboxMessage("auth.events", user, 2)
	other := storagetest.NewOutboxMessage("auth.events", storagetest.NewUUID(), 3)

	enqueued, commit := make(chan struct{}), make(chan struct{})
	firstDone := make(chan error, 1)
	go func() {
		firstDone <- db.InTx(ctx, func(ctx context.Context) error {
			if err := outbox.Enqueue(ctx, first); err != nil {
				return err
			}
			// A statement after it sends the enqueue, which goes out late.
			if _, err := postgres.NewOutcomeRepository(db).Outcome(ctx, domain.RequestKey{ClientID: "c", RequestID: "r"}, time.Now()); domain.ErrorCode(err) != domain.CodeNotFound {
				return err
			}
			close(enqueued)
			<-commit
			return nil
		})
	}()
	<-enqueued
	secondDone := make(chan error, 1)
	go func() {
		secondDone <- db.InTx(ctx, func(ctx context.Context) error { return outbox.Enqueue(ctx, second) })
	}()
	if err := db.InTx(ctx, func(ctx context.Context) error { return outbox.Enqueue(ctx, other) }); err != nil {
		t.Fatalf("another key: %v", err)
	}
	waitForLockWaiters(t, dbURL, 1)
	select {
	case err := <-secondDone:
		t.Fatalf("the second transaction for the key finished (%v) while the first was open", err)
	default:
	}
	close(commit)
	for _, done := range []chan error{firstDone, secondDone} {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	got, err := outbox.Pending(ctx)
	if err != nil {
		t.Fatal(err)
	}
	storagetest.CheckOutboxMessages(t, got, []domain.OutboxMessage{first, other, second})
}

// waitForLockWaiters waits until n sessions wait for an advisory lock.
func waitForLockWaiters(t *testing.T, dbURL string, n int) {
	t.Helper()
	conn := connect(t, dbURL)
	deadline := time.Now().Add(10 * time.Second)
	for {
		var waiting int
		if err := conn.QueryRow(context.Background(),
			`SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`).Scan(&waiting); err != nil {
			t.Fatal(err)
		}
		if waiting == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d sessions wait for an advisory lock, want %d", waiting, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestOutboxOpensRowsBoundToTheirID: rows written before rows had a seal
// nonce (their values bound to their ids) are still read, so an upgrade
// with messages in the outbox loses none.
func TestOutboxOpensRowsBoundToTheirID(t *testing.T) {
	t.Parallel()
	db, dbURL := openDB(t)
	sealer := newSealer(t)
	outbox := postgres.NewOutbox(db, sealer)
	m := storagetest.NewOutboxMessage("auth.notifications", storagetest.NewUUID(), 1)
	headers := postgres.EncodeOutboxHeaders(m.Headers)
	const id = 4242
	value := sealer.Seal(m.Value, postgres.LegacyOutboxAD(id, m.Topic, m.Key, headers))
	if _, err := connect(t, dbURL).Exec(context.Background(), `
		INSERT INTO outbox (id, shard, topic, key, headers, value, created_at)
		VALUES ($1, 0, $2, $3, $4, $5, $6)`, id, m.Topic, m.Key, headers, value, m.CreatedAt); err != nil {
		t.Fatal(err)
	}
	got, err := outbox.Pending(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	storagetest.CheckOutboxMessages(t, got, []domain.OutboxMessage{m})
}
