package inmem

import (
	"bytes"
	"context"
	"slices"
	"sync"

	"github.com/authworker/authworker/domain"
)

const outboxStore = "outbox"

// Outbox is an in-memory domain.Outbox. It records the messages of
// transactions that commit (Transactor.InTx returning nil) for tests to
// inspect with Messages; nothing publishes them.
type Outbox struct {
	mu   sync.Mutex
	msgs []domain.OutboxMessage
}

var _ domain.Outbox = (*Outbox)(nil)

// NewOutbox returns an empty Outbox.
func NewOutbox() *Outbox {
	return &Outbox{}
}

// Enqueue implements domain.Outbox, like postgres.Outbox: it joins the
// Transactor's transaction in ctx and returns CodeInternal outside one.
func (o *Outbox) Enqueue(ctx context.Context, msgs ...domain.OutboxMessage) error {
	if err := checkContext(ctx, outboxStore); err != nil {
		return err
	}
	t, ok := ctx.Value(txKey{}).(*tx)
	if !ok {
		return domain.Errorf(domain.CodeInternal, "outbox enqueue outside a transaction")
	}
	stored := make([]domain.OutboxMessage, 0, len(msgs))
	for _, m := range msgs {
		if err := m.Validate(); err != nil {
			return err
		}
		stored = append(stored, storedOutboxMessage(m))
	}
	if len(stored) == 0 {
		return nil
	}
	t.afterCommit(func() {
		o.mu.Lock()
		defer o.mu.Unlock()
		o.msgs = append(o.msgs, stored...)
	})
	return nil
}

// Messages returns copies of the messages committed so far, in the order
// the relay would publish them.
func (o *Outbox) Messages() []domain.OutboxMessage {
	o.mu.Lock()
	defer o.mu.Unlock()
	out := make([]domain.OutboxMessage, len(o.msgs))
	for i, m := range o.msgs {
		out[i] = storedOutboxMessage(m)
	}
	return out
}

// storedOutboxMessage is a deep copy of m as PostgreSQL would return it.
func storedOutboxMessage(m domain.OutboxMessage) domain.OutboxMessage {
	m.Key, m.Value = bytes.Clone(m.Key), bytes.Clone(m.Value)
	m.Headers = slices.Clone(m.Headers)
	for i := range m.Headers {
		m.Headers[i].Value = bytes.Clone(m.Headers[i].Value)
	}
	m.CreatedAt = storedTime(m.CreatedAt)
	return m
}
