package domain

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"
)

// RequestKey identifies a request for idempotency: the calling client and
// the request id it chose. Two clients may use the same request id.
type RequestKey struct {
	ClientID  string
	RequestID string
}

// MaxRequestKeyLen bounds both halves of a RequestKey, in bytes of their
// UTF-8 form: what Kafka headers, the database index and clients in every
// language count alike.
const MaxRequestKeyLen = 255

// Validate returns a CodeInvalid error naming the field ("client.clientId"
// or "requestId") unless both halves are UTF-8 text of 1 to
// MaxRequestKeyLen bytes without NUL.
func (k RequestKey) Validate() error {
	for _, f := range []struct{ field, value string }{
		{"client.clientId", k.ClientID},
		{"requestId", k.RequestID},
	} {
		if !utf8.ValidString(f.value) || strings.IndexByte(f.value, 0) >= 0 {
			return Invalid(f.field, "%s must be UTF-8 text without NUL characters", f.field)
		}
		if n := len(f.value); n == 0 || n > MaxRequestKeyLen {
			return Invalid(f.field, "%s must be 1 to %d bytes long", f.field, MaxRequestKeyLen)
		}
	}
	return nil
}

// Outcome is the stored reply to a request, so that a redelivered or
// retried request is answered with it instead of being acted on twice.
// Reply is opaque to storage: sealed, because replies carry tokens.
type Outcome struct {
	Key  RequestKey
	Code Code // the reply's error code, "" for success
	// RequestDigest is a keyed digest of the request the outcome answers,
	// so that a request reusing the key but asking something else is told
	// apart from a retry. Opaque to storage.
	RequestDigest []byte
	Reply         []byte // the sealed encoded reply
	CreatedAt     time.Time
	ExpiresAt     time.Time // after which the outcome is forgotten
}

// OutcomeRepository stores request outcomes.
type OutcomeRepository interface {
	// Outcome returns the outcome of the request, CodeNotFound when none is
	// stored or it expired at now, CodeInvalid for an invalid key, and
	// CodeUnavailable when the store is down.
	Outcome(ctx context.Context, key RequestKey, now time.Time) (Outcome, error)

	// SaveOutcome stores an outcome. It returns CodeConflict when one that
	// has not expired at o.CreatedAt is stored for the key already (another
	// delivery of the request got there first); an expired one not yet
	// deleted is replaced. It returns CodeInvalid for an invalid key and
	// CodeUnavailable when the store is down.
	//
	// Inside a transaction (Transactor.InTx), an adapter may send the write
	// with the transaction's commit: the conflict, or the store being down,
	// is then returned by InTx instead, as CodeConflict or CodeUnavailable,
	// and the transaction rolls back.
	SaveOutcome(ctx context.Context, o Outcome) error

	// DeleteExpiredOutcomes deletes up to limit outcomes expired at now and
	// returns how many it deleted.
	DeleteExpiredOutcomes(ctx context.Context, now time.Time, limit int) (int, error)
}

// Transactor makes several repository calls one unit of work.
type Transactor interface {
	// InTx calls fn with a context that carries a transaction: every
	// repository call made with that context joins it. The transaction
	// commits if fn returns nil and rolls back otherwise, undoing every
	// write made through the context; fn's error is returned as is. A call
	// that fails inside fn (say, CodeConflict from CreateUser) undoes only
	// its own work, so fn may go on. Nested calls join the outer
	// transaction.
	//
	// Use it to store a request's effects and its outcome together:
	//
	//	err := tx.InTx(ctx, func(ctx context.Context) error {
	//		if err := users.CreateUser(ctx, u); err != nil {
	//			return err
	//		}
	//		return outcomes.SaveOutcome(ctx, o)
	//	})
	InTx(ctx context.Context, fn func(ctx context.Context) error) error
}
