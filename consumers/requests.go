package consumers

import (
	"context"
	"errors"
	"iter"
	"log/slog"

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
	// Send produces a reply along route and waits for the broker. code is
	// the reply's error code, "" for success.
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

// Requests is the Handler for auth.request: it reads where the reply goes,
// decodes the request, has it answered, and sends the reply. Records that
// cannot be answered go to the dead-letter topic, and are not acted on.
type Requests struct {
	codec    *schemas.Codec
	routing  schemas.ReplyRouting
	bindings ClientBindings
	answerer Answerer
	replies  Replier
	dead     DeadLetterer
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
	Logger      *slog.Logger
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
	return &Requests{
		codec:    deps.Codec,
		routing:  routing,
		bindings: deps.Bindings,
		answerer: deps.Answerer,
		replies:  deps.Replies,
		dead:     deps.DeadLetters,
		logger:   logger,
	}, nil
}

// Handle implements Handler.
func (r *Requests) Handle(ctx context.Context, msg *kafka.Message) error {
	route, err := r.routing.Route(msg.Key, headers(msg.Headers))
	if err != nil {
		reason := schemas.DeadLetterReason(err)
		r.logger.Warn("request cannot be answered; dead-lettered", "reason", reason, "err", err)
		return r.dead.Send(ctx, msg, reason, err.Error())
	}

	req, err := r.codec.DecodeRequest(ctx, msg.Value)
	if err != nil {
		if errors.Is(err, schemas.ErrRegistryUnavailable) {
			return err // transient: the pool retries
		}
		r.logger.Warn("undecodable request; dead-lettered", "err", err)
		if err := r.dead.Send(ctx, msg, schemas.DeadLetterUndecodable, err.Error()); err != nil {
			return err
		}
		if route.CorrelationID == nil {
			return nil // nobody could match a reply
		}
		// The decoder's words stay in the log and the dead letter.
		return r.sendError(ctx, route, "", domain.Errorf(domain.CodeInvalid, "request is not a valid AuthRequest"))
	}

	if err := r.bindings.check(topicOf(msg), req.Client.ClientID); err != nil {
		r.logger.Warn("request from a client on a topic not bound to it", "client_id", req.Client.ClientID, "topic", topicOf(msg))
		return r.sendError(ctx, route, req.RequestID, err)
	}
	rep, err := r.answerer.Answer(ctx, req, app.Origin{ReplyTopic: route.Topic, TraceParent: traceParent(msg.Headers)})
	if err != nil {
		return err // shutting down: no outcome yet, consumed again later
	}
	return r.replies.Send(ctx, route, rep.Code, rep.Value)
}

// sendError replies to a request that is not answered by a use case: not
// decoded (no request id), or not allowed.
func (r *Requests) sendError(ctx context.Context, route schemas.Route, requestID string, err error) error {
	resp := schemas.ErrorResponse(requestID, err)
	value, encErr := r.codec.EncodeResponse(resp)
	if encErr != nil {
		r.logger.Error("encode error reply", "err", encErr)
	}
	return r.replies.Send(ctx, route, resp.Status.Code(), value)
}

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
