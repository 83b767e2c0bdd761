package storagetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/authworker/authworker/domain"
)

// OutboxEnv is an outbox under test and what the suite needs around it.
type OutboxEnv struct {
	// Tx is the Transactor whose transactions Outbox's Enqueue joins.
	Tx     domain.Transactor
	Outbox domain.Outbox
	// Committed returns the messages of committed transactions that are
	// waiting to be published, in the order they will be published, values
	// opened.
	Committed func(t *testing.T) []domain.OutboxMessage
}

// RunOutboxTests runs the conformance suite of domain.Outbox. newEnv
// returns an empty outbox, cleaned up by t.Cleanup if need be; it is called
// once per subtest.
func RunOutboxTests(t *testing.T, newEnv func(t *testing.T) OutboxEnv) {
	tests := []struct {
		name string
		run  func(t *testing.T, e OutboxEnv)
	}{
		{"CommitKeepsOrder", testOutboxCommitKeepsOrder},
		{"RollbackStoresNothing", testOutboxRollbackStoresNothing},
		{"NestedFailureUndoesOnlyItsMessages", testOutboxNestedFailure},
		{"OutsideTransaction", testOutboxOutsideTransaction},
		{"InvalidMessageStoresNothing", testOutboxInvalidMessage},
		{"NoMessages", testOutboxNoMessages},
		{"CallerMayReuseBuffers", testOutboxCallerMayReuseBuffers},
		{"CanceledContext", testOutboxCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newEnv(t))
		})
	}
}

// NewOutboxMessage returns the seq-th message for key on topic, created at
// baseTime, with two headers and a value that names it.
func NewOutboxMessage(topic, key string, seq int) domain.OutboxMessage {
	return domain.OutboxMessage{
		Topic: topic,
		Key:   []byte(key),
		Value: fmt.Appendf(nil, "%s #%d: code %06d", key, seq, seq),
		Headers: []domain.MessageHeader{
			{Key: "type", Value: []byte("test")},
			{Key: "seq", Value: fmt.Appendf(nil, "%d", seq)},
		},
		CreatedAt: baseTime,
	}
}

// enqueueInTx enqueues msgs in a transaction that commits.
func enqueueInTx(t *testing.T, e OutboxEnv, msgs ...domain.OutboxMessage) {
	t.Helper()
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		return e.Outbox.Enqueue(ctx, msgs...)
	})
	if err != nil {
		t.Fatalf("Enqueue in a transaction: %v", err)
	}
}

// CheckOutboxMessages reports an error unless got are want as stored:
// same topics, keys, values and headers in the same order, creation times
// in UTC to the microsecond. A nil and an empty value are the same.
func CheckOutboxMessages(tb testing.TB, got, want []domain.OutboxMessage) {
	tb.Helper()
	if len(got) != len(want) {
		tb.Fatalf("got %d messages %v, want %d %v", len(got), got, len(want), want)
	}
	for i := range got {
		if !SameOutboxMessage(got[i], want[i]) {
			tb.Errorf("message %d = %v %s, want %v %s", i, got[i], headersOf(got[i]), want[i], headersOf(want[i]))
		} else if !bytes.Equal(got[i].Value, want[i].Value) {
			tb.Errorf("message %d %v has another value than the one enqueued", i, got[i])
		}
		checkTime(tb, fmt.Sprintf("message %d CreatedAt", i), got[i].CreatedAt, want[i].CreatedAt)
	}
}

// SameOutboxMessage reports whether got is want as published: topic, key,
// value and headers alike; creation times are not compared.
func SameOutboxMessage(got, want domain.OutboxMessage) bool {
	if got.Topic != want.Topic || !bytes.Equal(got.Key, want.Key) || !bytes.Equal(got.Value, want.Value) ||
		len(got.Headers) != len(want.Headers) {
		return false
	}
	for i := range got.Headers {
		if got.Headers[i].Key != want.Headers[i].Key || !bytes.Equal(got.Headers[i].Value, want.Headers[i].Value) {
			return false
		}
	}
	return true
}

func headersOf(m domain.OutboxMessage) string {
	var b bytes.Buffer
	for _, h := range m.Headers {
		fmt.Fprintf(&b, "[%s=%q]", h.Key, h.Value)
	}
	return b.String()
}

func testOutboxCommitKeepsOrder(t *testing.T, e OutboxEnv) {
	m1, m2, m3 := NewOutboxMessage("auth.events", "a", 1), NewOutboxMessage("auth.notifications", "b", 1), NewOutboxMessage("auth.events", "a", 2)
	m2.Headers = nil
	m3.Value = nil
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.Outbox.Enqueue(ctx, m1, m2); err != nil {
			return err
		}
		return e.Outbox.Enqueue(ctx, m3)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	CheckOutboxMessages(t, e.Committed(t), []domain.OutboxMessage{m1, m2, m3})
}

func testOutboxRollbackStoresNothing(t *testing.T, e OutboxEnv) {
	refused := errors.New("refused after enqueueing")
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.Outbox.Enqueue(ctx, NewOutboxMessage("auth.events", "a", 1)); err != nil {
			return err
		}
		return refused
	})
	if !errors.Is(err, refused) {
		t.Fatalf("InTx = %v, want fn's error", err)
	}
	CheckOutboxMessages(t, e.Committed(t), nil)
}

// testOutboxNestedFailure: a nested unit of work that fails takes its
// messages with it, and the outer one's commit with it.
func testOutboxNestedFailure(t *testing.T, e OutboxEnv) {
	a, b, c := NewOutboxMessage("auth.events", "k", 1), NewOutboxMessage("auth.events", "k", 2), NewOutboxMessage("auth.events", "k", 3)
	refused := errors.New("inner refused")
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.Outbox.Enqueue(ctx, a); err != nil {
			return err
		}
		inner := e.Tx.InTx(ctx, func(ctx context.Context) error {
			if err := e.Outbox.Enqueue(ctx, b); err != nil {
				return err
			}
			return refused
		})
		if !errors.Is(inner, refused) {
			return fmt.Errorf("inner InTx = %v, want its fn's error", inner)
		}
		return e.Outbox.Enqueue(ctx, c)
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	CheckOutboxMessages(t, e.Committed(t), []domain.OutboxMessage{a, c})
}

func testOutboxOutsideTransaction(t *testing.T, e OutboxEnv) {
	err := e.Outbox.Enqueue(context.Background(), NewOutboxMessage("auth.events", "a", 1))
	checkCode(t, "Enqueue outside a transaction", err, domain.CodeInternal)
	CheckOutboxMessages(t, e.Committed(t), nil)
}

// testOutboxInvalidMessage: one bad message refuses the whole call and
// leaves the transaction usable.
func testOutboxInvalidMessage(t *testing.T, e OutboxEnv) {
	good, bad := NewOutboxMessage("auth.events", "a", 1), NewOutboxMessage("auth.events", "", 2)
	later := NewOutboxMessage("auth.events", "a", 3)
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		checkCode(t, "Enqueue with a message without a key", e.Outbox.Enqueue(ctx, good, bad), domain.CodeInternal)
		return e.Outbox.Enqueue(ctx, later)
	})
	if err != nil {
		t.Fatalf("InTx after a refused Enqueue: %v", err)
	}
	CheckOutboxMessages(t, e.Committed(t), []domain.OutboxMessage{later})
}

func testOutboxNoMessages(t *testing.T, e OutboxEnv) {
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		return e.Outbox.Enqueue(ctx)
	})
	if err != nil {
		t.Fatalf("Enqueue with no messages: %v", err)
	}
	CheckOutboxMessages(t, e.Committed(t), nil)
}

// testOutboxCallerMayReuseBuffers: Enqueue keeps copies, so a caller that
// reuses its buffers before the commit does not change what is published.
func testOutboxCallerMayReuseBuffers(t *testing.T, e OutboxEnv) {
	m := NewOutboxMessage("auth.events", "a", 1)
	want := NewOutboxMessage("auth.events", "a", 1)
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		if err := e.Outbox.Enqueue(ctx, m); err != nil {
			return err
		}
		m.Key[0], m.Value[0], m.Headers[0].Value[0] = 'X', 'X', 'X'
		m.Headers[1].Key = "changed"
		return nil
	})
	if err != nil {
		t.Fatalf("InTx: %v", err)
	}
	CheckOutboxMessages(t, e.Committed(t), []domain.OutboxMessage{want})
}

func testOutboxCanceledContext(t *testing.T, e OutboxEnv) {
	err := e.Tx.InTx(context.Background(), func(ctx context.Context) error {
		canceled, cancel := context.WithCancel(ctx)
		cancel()
		err := e.Outbox.Enqueue(canceled, NewOutboxMessage("auth.events", "a", 1))
		if !errors.Is(err, context.Canceled) || domain.ErrorCode(err) != domain.CodeUnavailable {
			t.Errorf("Enqueue with a cancelled context = %v, want unavailable wrapping context.Canceled", err)
		}
		return err
	})
	if err == nil {
		t.Fatal("InTx committed after a failed Enqueue")
	}
	CheckOutboxMessages(t, e.Committed(t), nil)
}
