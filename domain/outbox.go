package domain

import (
	"context"
	"fmt"
	"time"
	"unicode/utf8"
)

// OutboxMessage is a record to publish once the transaction that wrote it
// commits: a domain event on auth.events, or a one-time code for the mailer
// on auth.notifications. It is published if and only if that transaction
// commits, at least once, and in order with the other messages of its key.
type OutboxMessage struct {
	Topic string
	// Key orders the messages: those with the same key are published in
	// the order they were enqueued, to one partition. Use the user's id, so
	// that one user's records stay in order. Keys are not secret.
	Key []byte
	// Value may hold a secret, such as a one-time code: adapters keep it
	// sealed at rest, and String never shows it. A nil or empty value is
	// published as an empty one, never as a tombstone.
	Value   []byte
	Headers []MessageHeader
	// CreatedAt is when the change the message reports happened, from the
	// use case's clock. It becomes the record's timestamp.
	CreatedAt time.Time
}

// MessageHeader is a header of an outbox message. Headers are published in
// the order given, duplicates included; a nil value is published as an
// empty one.
type MessageHeader struct {
	Key   string
	Value []byte
}

// maxTopicLen is the longest topic name Kafka accepts.
const maxTopicLen = 249

// Validate returns a CodeInternal error unless m can be published: its
// topic is a legal Kafka topic name (1 to 249 of a-z, A-Z, 0-9, '.', '_'
// and '-'), it has a key and a creation time, and its header keys are
// non-empty UTF-8 text. A message that fails is a bug in the use case that
// built it, not a fault of the request. Outbox adapters call it before
// writing.
func (m OutboxMessage) Validate() error {
	if !ValidTopic(m.Topic) {
		return Errorf(CodeInternal, "outbox message topic %q is not a legal topic name", m.Topic)
	}
	if len(m.Key) == 0 {
		return Errorf(CodeInternal, "outbox message to %s has no key", m.Topic)
	}
	if m.CreatedAt.IsZero() {
		return Errorf(CodeInternal, "outbox message to %s has no creation time", m.Topic)
	}
	for _, h := range m.Headers {
		if h.Key == "" || !utf8.ValidString(h.Key) {
			return Errorf(CodeInternal, "outbox message to %s has a header key that is not text", m.Topic)
		}
	}
	return nil
}

// ValidTopic reports whether s is a legal Kafka topic name: 1 to 249 of
// a-z, A-Z, 0-9, '.', '_' and '-'.
func ValidTopic(s string) bool {
	if len(s) == 0 || len(s) > maxTopicLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (c < '0' || c > '9') && c != '.' && c != '_' && c != '-' {
			return false
		}
	}
	return true
}

// String describes m without its value, which may hold a secret.
func (m OutboxMessage) String() string {
	return fmt.Sprintf("OutboxMessage{Topic:%s Key:%q Headers:%d Value:(%d bytes hidden) CreatedAt:%s}",
		m.Topic, m.Key, len(m.Headers), len(m.Value), m.CreatedAt.Format(time.RFC3339Nano))
}

// GoString is String, for %#v.
func (m OutboxMessage) GoString() string { return m.String() }

// Outbox stores messages in the transaction of the state change they
// report, so that they are published if and only if it commits. A relay
// publishes them afterwards.
type Outbox interface {
	// Enqueue stores msgs, in order, in the transaction that ctx carries
	// (Transactor.InTx): they are published once it commits, and never if
	// it rolls back. Messages with the same key are published in the order
	// they were enqueued: the order of the arguments, and across
	// transactions the order in which the transactions commit. To keep
	// that order, Enqueue holds a lock on each key until the transaction
	// ends, so another transaction that enqueues for the key waits:
	// enqueue last in a transaction, after its row locks.
	//
	// An adapter may send the write with the transaction's commit: a
	// failure is then returned by InTx instead.
	//
	// It returns CodeInternal, storing nothing, when ctx carries no
	// transaction (a message stored on its own could report a change that
	// never committed) or when a message fails Validate, and
	// CodeUnavailable when the store is down. Enqueue with no messages
	// does nothing.
	Enqueue(ctx context.Context, msgs ...OutboxMessage) error
}
