package consumers

import (
	"context"
	"errors"
	"iter"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// Answerer answers decoded requests; app.Service implements it.
type Answerer interface {
	// Answer returns the reply to req. It fails only when ctx ends before
	// the request has an outcome.
	Answer(ctx context.Context, req *schemas.Request, origin app.Origin) (app.Reply, error)
}

// Replier sends correlated replies; producers.Replies implements it.
type Replier interface {
	// Deliverable reports whether a reply can go along route: nil when
	// its topic has its partition, an error wrapping
	// schemas.ErrReplyUndeliverable when not, and another error when it
	// cannot tell now (the brokers do not answer).
	Deliverable(ctx context.Context, route schemas.Route) error
	// Send produces a reply along route and waits for the broker. code is
	// the reply's error code, "" for success. It fails with an error
	// wrapping schemas.ErrReplyUndeliverable when the reply can never go
	// there, and with another error when it may later.
	Send(ctx context.Context, route schemas.Route, code domain.Code, value []byte) error
}

// DeadLetterer keeps records that cannot be answered; producers.DeadLetters
// implements it.
type DeadLetterer interface {
	// Send copies msg to the dead-letter topic with reason (a
	// schemas.DeadLetter* value) and a detail that holds nothing from the
	// record's value, and waits for the broker.
	Send(ctx context.Context, msg *kafka.Message, reason, detail string) error
}

// Observer is told how records ended, for metrics; metrics.Requests
// implements it. It is called on the record's goroutine, once the outcome
// is durable, and must return quickly.
type Observer interface {
	// Replied reports a reply the broker acknowledged.
	Replied(r Replied)
	// DeadLettered reports a record the dead-letter topic acknowledged,
	// with its reason (a schemas.DeadLetter* value).
	DeadLettered(reason string)
}

// Replied describes an acknowledged reply. It holds nothing a caller
// chose but the operation, which is one of a fixed set.
type Replied struct {
	// Op is the request's operation (app.OperationName), "" when the
	// record was not decoded.
	Op string
	// Status is the reply's wire status.
	Status schemas.Status
	// Handling is the time from Handle's start to the acknowledgement,
	// for this attempt at the record.
	Handling time.Duration
	// Age is the time from the record's Kafka timestamp to the
	// acknowledgement: how long its caller waited, broker and queue
	// included, by the clocks of the record's timestamp and of the
	// worker. It is valid only when HasAge is set: the record had a
	// timestamp.
	Age    time.Duration
	HasAge bool
}

// Requests is the Handler for auth.request: it reads where the reply goes,
// decodes the request, has it answered, and sends the reply. Records that
// cannot be answered go to the dead-letter topic, and are not acted on; so
// do records whose reply turns out undeliverable only once they were
// answered (their outcome stands), rather than being retried for ever
// ahead of every later record of their partition.
type Requests struct {
	codec    *schemas.Codec
	routing  schemas.ReplyRouting
	bindings ClientBindings
	answerer Answerer
	replies  Replier
	dead     DeadLetterer
	observer Observer
	now      func() time.Time
	logger   *slog.Logger
}

var _ Handler = (*Requests)(nil)

// ClientBindings maps client ids to the request topic each must use. Kafka
// does not tell a consumer who produced a record, but it can restrict who
// may produce to a topic: give a client a request topic of its own that
// only its principal may write (an ACL), bind its id to that topic, and no
// one else can speak as that client. A bound client id is refused on any
// other topic, and a bound topic takes only its client's id.
type ClientBindings map[string]string

// check returns the error that answers a request of clientID read from
// topic, or nil when the bindings allow it.
func (b ClientBindings) check(topic, clientID string) error {
	bound, ok := b[clientID]
	switch {
	case ok && bound != topic:
		return domain.Invalid("client.clientId", "client.clientId is bound to another request topic")
	case !ok && b.isBound(topic):
		return domain.Invalid("client.clientId", "client.clientId may not use this request topic")
	}
	return nil
}

func (b ClientBindings) isBound(topic string) bool {
	for _, t := range b {
		if t == topic {
			return true
		}
	}
	return false
}

// RequestsDeps are the collaborators of Requests.
type RequestsDeps struct {
	Codec   *schemas.Codec
	Routing schemas.ReplyRouting
	// Bindings, when set, bind client ids to request topics.
	Bindings    ClientBindings
	Answerer    Answerer
	Replies     Replier
	DeadLetters DeadLetterer
	// Observer, when set, is told of every reply and dead letter.
	Observer Observer
	// Now tells the time for Observer. Default time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// NewRequests returns the request Handler. It fails when the reply routing
// cannot work.
func NewRequests(deps RequestsDeps) (*Requests, error) {
	routing := deps.Routing.WithDefaults()
	if err := routing.Validate(); err != nil {
		return nil, err
	}
	logger := deps.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	observer := deps.Observer
	if observer == nil {
		observer = noObserver{}
	}
	now := deps.Now
	if now == nil {
		now = time.Now
	}
	return &Requests{
		codec:    deps.Codec,
		routing:  routing,
		bindings: deps.Bindings,
		answerer: deps.Answerer,
		replies:  deps.Replies,
		dead:     deps.DeadLetters,
		observer: observer,
		now:      now,
		logger:   logger,
	}, nil
}

// Handle implements Handler.
func (r *Requests) Handle(ctx context.Context, msg *kafka.Message) error {
	start := r.now()
	route, err := r.routing.Route(msg.Key, headers(msg.Headers))
	if err != nil {
		reason := schemas.DeadLetterReason(err)
		r.logger.Warn("request cannot be answered; dead-lettered", "reason", reason, "err", err)
		return r.deadLetter(ctx, msg, reason, err.Error())
	}
	if err := r.replies.Deliverable(ctx, route); err != nil {
		if !errors.Is(err, schemas.ErrReplyUndeliverable) {
			return err // cannot tell now: the pool retries
		}
		r.logger.Warn("request cannot be answered; dead-lettered", "reason", schemas.DeadLetterReplyUndeliverable, "err", err)
		return r.deadLetter(ctx, msg, schemas.DeadLetterReplyUndeliverable, err.Error())
	}

	req, err := r.codec.DecodeRequest(ctx, msg.Value)
	if err != nil {
		if errors.Is(err, schemas.ErrRegistryUnavailable) {
			return err // transient: the pool retries
		}
		r.logger.Warn("undecodable request; dead-lettered", "err", err)
		if err := r.deadLetter(ctx, msg, schemas.DeadLetterUndecodable, err.Error()); err != nil {
			return err
		}
		if route.CorrelationID == nil {
			return nil // nobody could match a reply
		}
		// The decoder's words stay in the log and the dead letter.
		return r.sendError(ctx, msg, start, "", route, "", domain.Errorf(domain.CodeInvalid, "request is not a valid AuthRequest"))
	}

	op := app.OperationName(req.Operation)
	if err := r.bindings.check(topicOf(msg), req.Client.ClientID); err != nil {
		r.logger.Warn("request from a client on a topic not bound to it", "client_id", req.Client.ClientID, "topic", topicOf(msg))
		return r.sendError(ctx, msg, start, op, route, req.RequestID, err)
	}
	rep, err := r.answerer.Answer(ctx, req, app.Origin{ReplyTopic: route.Topic, TraceParent: traceParent(msg.Headers)})
	if err != nil {
		return err // shutting down: no outcome yet, consumed again later
	}
	return r.reply(ctx, msg, start, op, route, rep.Code, rep.Value)
}

// sendError replies to a request that is not answered by a use case: not
// decoded (no request id), or not allowed.
func (r *Requests) sendError(ctx context.Context, msg *kafka.Message, start time.Time, op string, route schemas.Route, requestID string, err error) error {
	resp := schemas.ErrorResponse(requestID, err)
	value, encErr := r.codec.EncodeResponse(resp)
	if encErr != nil {
		r.logger.Error("encode error reply", "err", encErr)
	}
	return r.reply(ctx, msg, start, op, route, resp.Status.Code(), value)
}

// reply sends a reply to msg, and tells the observer once the broker has
// it. A reply that can never reach its route (its topic or partition went
// away since Deliverable, or the broker refuses it for good) sends msg to
// the dead-letter topic instead.
func (r *Requests) reply(ctx context.Context, msg *kafka.Message, start time.Time, op string, route schemas.Route, code domain.Code, value []byte) error {
	if err := r.replies.Send(ctx, route, code, value); err != nil {
		if !errors.Is(err, schemas.ErrReplyUndeliverable) {
			return err
		}
		r.logger.Warn("reply undeliverable, request answered; dead-lettered", "op", op, "reason", schemas.DeadLetterReplyUndeliverable, "err", err)
		return r.deadLetter(ctx, msg, schemas.DeadLetterReplyUndeliverable, "answered; "+err.Error())
	}
	now := r.now()
	obs := Replied{Op: op, Status: schemas.StatusOf(code), Handling: now.Sub(start)}
	if msg.TimestampType != kafka.TimestampNotAvailable && !msg.Timestamp.IsZero() {
		obs.Age, obs.HasAge = now.Sub(msg.Timestamp), true
	}
	r.observer.Replied(obs)
	return nil
}

// deadLetter sends msg to the dead-letter topic, and tells the observer
// once the broker has it.
func (r *Requests) deadLetter(ctx context.Context, msg *kafka.Message, reason, detail string) error {
	if err := r.dead.Send(ctx, msg, reason, detail); err != nil {
		return err
	}
	r.observer.DeadLettered(reason)
	return nil
}

// noObserver is the Observer of a Requests given none.
type noObserver struct{}

func (noObserver) Replied(Replied)     {}
func (noObserver) DeadLettered(string) {}

// headers yields a record's headers as key, value pairs.
func headers(hs []kafka.Header) iter.Seq2[string, []byte] {
	return func(yield func(string, []byte) bool) {
		for _, h := range hs {
			if !yield(h.Key, h.Value) {
				return
			}
		}
	}
}

func topicOf(msg *kafka.Message) string {
	if msg.TopicPartition.Topic == nil {
		return ""
	}
	return *msg.TopicPartition.Topic
}

// traceParent returns the W3C traceparent header of a record, if it has
// exactly one; its validity is checked where it is used. Two are
// ambiguous (Trace Context treats them as none), and readers disagree on
// which one counts, so the request passes none on.
func traceParent(hs []kafka.Header) string {
	var parent string
	found := 0
	for _, h := range hs {
		if h.Key == schemas.HeaderTraceparent {
			parent, found = string(h.Value), found+1
		}
	}
	if found != 1 {
		return ""
	}
	return parent
}
