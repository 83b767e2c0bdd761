package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/schemas"
)

// Defaults of Config's event settings.
const (
	DefaultEventsTopic = "auth.events"
	DefaultEventSource = "authworker"
)

// recorder implements domain.Events for the use cases: it keeps a
// request's events with its call, and the Service writes them to the outbox
// in the transaction that stores the request's outcome (publish). So an
// event exists if and only if the change it reports committed:
//
//   - events recorded in a unit of work commit with its writes; when the
//     transaction is retried, the attempt's events are dropped with it;
//   - events recorded outside one (a refused login) commit with the stored
//     outcome, and a delivery that loses the race to store it publishes
//     none;
//   - a request whose outcome is not stored (introspection, a reply a retry
//     may change) publishes what it recorded in a transaction of its own.
type recorder struct {
	logger *slog.Logger
}

var _ domain.Events = recorder{}

// Record implements domain.Events.
func (r recorder) Record(ctx context.Context, events ...domain.Event) {
	c := callOf(ctx)
	if c == nil {
		// Every use case runs inside a call; an event recorded elsewhere
		// is a bug, and has no transaction to commit with.
		r.logger.Error("event recorded outside a request; dropped", "events", len(events))
		return
	}
	c.events = append(c.events, events...)
}

// pending reports whether c has events not written to the outbox yet.
func (c *call) pending() bool { return len(c.events) > c.published }

// publish writes c's pending events to the outbox, in the transaction ctx
// carries. The caller marks them published (c.published) once that
// transaction commits.
func (s *Service) publish(ctx context.Context, c *call) error {
	if !c.pending() {
		return nil
	}
	msgs := make([]domain.OutboxMessage, 0, len(c.events)-c.published)
	for _, ev := range c.events[c.published:] {
		m, err := s.eventMessage(c, ev)
		if err != nil {
			return err
		}
		msgs = append(msgs, m)
	}
	return s.outbox.Enqueue(ctx, msgs...)
}

// publishAlone writes c's pending events in a transaction of their own: for
// a request whose outcome is not stored. It is retried like the other
// database steps; events that still cannot be written are logged and lost,
// as the reply says the request failed.
func (s *Service) publishAlone(ctx context.Context, c *call) {
	if !c.pending() {
		return
	}
	err := s.retry(ctx, c, "publish events", func() error {
		return s.tx.InTx(ctx, func(ctx context.Context) error { return s.publish(ctx, c) })
	})
	if err != nil {
		s.cfg.Logger.Error("events not published", "request_id", c.req.RequestID, "events", len(c.events)-c.published, "err", err)
		return
	}
	c.published = len(c.events)
}

// eventMessage is ev, caused by c's request, as an outbox message for the
// events topic.
func (s *Service) eventMessage(c *call, ev domain.Event) (domain.OutboxMessage, error) {
	wire := &schemas.Event{
		EventID:    s.newID(),
		OccurredAt: ev.OccurredAt,
		RequestID:  &c.key.RequestID,
		ClientID:   &c.key.ClientID,
	}
	if c.client.IP != "" {
		wire.IP = &c.client.IP
	}
	return eventMessage(s.codec, s.cfg, wire, ev, c.origin.TraceParent)
}

// eventMessage is ev, completing wire, as an outbox message for the events
// topic: the Avro value, keyed by user id, with its CloudEvents headers.
// An event that concerns no account (a login for an unknown address, a
// key's rotation) is keyed by its own id: it has nothing to stay in order
// with, and a flood of them spreads over every partition.
func eventMessage(codec *schemas.Codec, cfg Config, wire *schemas.Event, ev domain.Event, traceparent string) (domain.OutboxMessage, error) {
	wire.Payload = eventPayload(ev.Payload)
	key := wire.EventID
	if ev.UserID != "" {
		user := string(ev.UserID)
		wire.UserID, key = &user, user
	}
	value, err := codec.EncodeEvent(wire)
	if err != nil {
		return domain.OutboxMessage{}, fmt.Errorf("encode event %T: %w", ev.Payload, err)
	}
	return domain.OutboxMessage{
		Topic: cfg.EventsTopic, Key: []byte(key), Value: value, CreatedAt: ev.OccurredAt,
		Headers: schemas.EventHeaders(wire, cfg.EventSource, traceparent),
	}, nil
}

// KeyEvents publishes the signing keys' rotations on the events topic, in
// the transaction that stores each new key: the OnKeyCreated hook of the
// workers' key manager and of authctl's (see tokens.Config).
type KeyEvents struct {
	codec  *schemas.Codec
	outbox domain.Outbox
	newID  handlers.IDGenerator
	cfg    Config
}

// NewKeyEvents returns KeyEvents writing to outbox. Of cfg it uses the
// events topic and source.
func NewKeyEvents(codec *schemas.Codec, outbox domain.Outbox, newID handlers.IDGenerator, cfg Config) (*KeyEvents, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &KeyEvents{codec: codec, outbox: outbox, newID: newID, cfg: cfg}, nil
}

// KeyCreated writes a SigningKeyRotated event for k to the outbox, in the
// transaction ctx carries: verifiers may fetch the key set early.
func (e *KeyEvents) KeyCreated(ctx context.Context, k domain.SigningKey) error {
	ev := domain.Event{
		OccurredAt: k.CreatedAt,
		Payload:    domain.SigningKeyRotated{KeyID: k.ID, Algorithm: k.Algorithm, SignsFrom: k.SignFrom},
	}
	m, err := eventMessage(e.codec, e.cfg, &schemas.Event{EventID: e.newID(), OccurredAt: k.CreatedAt}, ev, "")
	if err != nil {
		return err
	}
	return e.outbox.Enqueue(ctx, m)
}

// eventPayload is p on the wire.
func eventPayload(p domain.EventPayload) schemas.Payload {
	switch p := p.(type) {
	case domain.UserRegistered:
		return &schemas.UserRegistered{Email: string(p.Email)}
	case domain.LoginSucceeded:
		return &schemas.LoginSucceeded{SessionID: string(p.SessionID)}
	case domain.LoginFailed:
		return &schemas.LoginFailed{Reason: schemas.LoginFailureReason(p.Reason)}
	case domain.AccountLocked:
		return &schemas.AccountLocked{Scope: schemas.LockScope(p.Scope)}
	case domain.AccountUnlocked:
		return &schemas.AccountUnlocked{}
	case domain.SessionRefreshed:
		return &schemas.SessionRefreshed{SessionID: string(p.SessionID)}
	case domain.SessionRevoked:
		return &schemas.SessionRevoked{SessionID: string(p.SessionID), Reason: revocationReason(p.Reason)}
	case domain.RefreshTokenReuseDetected:
		return &schemas.RefreshTokenReuseDetected{SessionID: string(p.SessionID)}
	case domain.PasswordChanged:
		return &schemas.PasswordChanged{}
	case domain.PasswordResetRequested:
		return &schemas.PasswordResetRequested{}
	case domain.PasswordReset:
		return &schemas.PasswordReset{}
	case domain.EmailVerificationRequested:
		return &schemas.EmailVerificationRequested{}
	case domain.EmailVerified:
		return &schemas.EmailVerified{}
	case domain.AccountDisabled:
		return &schemas.AccountDisabled{}
	case domain.AccountEnabled:
		return &schemas.AccountEnabled{}
	case domain.AccountDeleted:
		return &schemas.AccountDeleted{}
	case domain.SigningKeyRotated:
		return &schemas.SigningKeyRotated{Kid: p.KeyID, Algorithm: p.Algorithm, SignsFrom: p.SignsFrom}
	}
	return nil // the encoder refuses it: a payload type missing here is a bug
}

// revocationReasons are the wire symbols of the domain's revocation
// reasons.
var revocationReasons = map[string]schemas.RevocationReason{
	domain.RevokedByLogout:          schemas.RevocationLogout,
	domain.RevokedByLogoutAll:       schemas.RevocationLogoutAll,
	domain.RevokedByReuse:           schemas.RevocationRefreshTokenReuse,
	domain.RevokedByPasswordChange:  schemas.RevocationPasswordChanged,
	domain.RevokedByPasswordReset:   schemas.RevocationPasswordReset,
	domain.RevokedByAccountDisabled: schemas.RevocationAccountDisabled,
	domain.RevokedByAccountDeleted:  schemas.RevocationAccountDeleted,
}

func revocationReason(reason string) schemas.RevocationReason {
	if r, ok := revocationReasons[reason]; ok {
		return r
	}
	return schemas.RevocationUnknown
}
