package consumers

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/confluentinc/confluent-kafka-go/v2/kafka"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/producers"
	"github.com/authworker/authworker/schemas"
)

// Replier sends correlated replies; producers.Replies implements it.
type Replier interface {
	// RouteFor reads where the reply to request goes. It returns
	// producers.ErrReplyTopicNotAllowed or producers.ErrBadReplyHeaders
	// when the request cannot be answered.
	RouteFor(request *kafka.Message) (producers.Route, error)
	// Send produces a reply and waits for the broker.
	Send(ctx context.Context, route producers.Route, code domain.Code, value []byte) error
}

// DeadLetterer keeps records that cannot be answered; producers.DeadLetters
// implements it.
type DeadLetterer interface {
	Send(ctx context.Context, msg *kafka.Message, reason, detail string) error
}

// UseCase is a handler from package handlers.
type UseCase[C, R any] interface {
	Handle(ctx context.Context, cmd C) (R, error)
}

// UseCases are the operations Requests dispatches to.
type UseCases struct {
	Register UseCase[handlers.Register, handlers.RegisterResult]
	Login    UseCase[handlers.Login, handlers.LoginResult]
}

// RequestsConfig configures Requests.
type RequestsConfig struct {
	// RetryWindow is how long a request whose store is unavailable is
	// retried before it is answered UNAVAILABLE; a request's own deadline
	// shortens it. Default 10 seconds.
	RetryWindow time.Duration
	Now         func() time.Time // default time.Now
	Logger      *slog.Logger
}

func (c *RequestsConfig) setDefaults() {
	if c.RetryWindow == 0 {
		c.RetryWindow = 10 * time.Second
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
}

// Requests is the Handler for auth.request: it decodes a request, runs its
// use case, and replies on the request's reply topic. Records that cannot
// be answered go to the dead-letter topic.
type Requests struct {
	codec   *schemas.Codec
	replies Replier
	dead    DeadLetterer
	uc      UseCases
	cfg     RequestsConfig
}

var _ Handler = (*Requests)(nil)

// NewRequests returns the request Handler.
func NewRequests(codec *schemas.Codec, replies Replier, dead DeadLetterer, uc UseCases, cfg RequestsConfig) *Requests {
	cfg.setDefaults()
	return &Requests{codec: codec, replies: replies, dead: dead, uc: uc, cfg: cfg}
}

// Dead-letter reasons.
const (
	reasonUndecodable          = "undecodable"
	reasonBadReplyHeaders      = "bad_reply_headers"
	reasonReplyTopicNotAllowed = "reply_topic_not_allowed"
)

// Handle implements Handler.
func (r *Requests) Handle(ctx context.Context, msg *kafka.Message) error {
	route, err := r.replies.RouteFor(msg)
	if err != nil {
		reason := reasonBadReplyHeaders
		if errors.Is(err, producers.ErrReplyTopicNotAllowed) {
			reason = reasonReplyTopicNotAllowed
		}
		r.cfg.Logger.Warn("request cannot be answered; dead-lettered", "reason", reason, "err", err)
		return r.dead.Send(ctx, msg, reason, err.Error())
	}

	req, err := r.codec.DecodeRequest(ctx, msg.Value)
	if err != nil {
		if errors.Is(err, schemas.ErrRegistryUnavailable) {
			return err // transient: the pool retries
		}
		r.cfg.Logger.Warn("undecodable request; dead-lettered", "err", err)
		if err := r.dead.Send(ctx, msg, reasonUndecodable, err.Error()); err != nil {
			return err
		}
		if route.CorrelationID == nil {
			return nil // nobody could match a reply
		}
		return r.reply(ctx, route, "", domain.Errorf(domain.CodeInvalid, "request is not a valid AuthRequest: %v", err))
	}

	start := r.cfg.Now()
	result, err := r.run(ctx, req)
	if ctx.Err() != nil {
		return ctx.Err() // shutting down: no outcome yet, consumed again later
	}
	r.cfg.Logger.Info("request handled", "op", opName(req.Operation), "request_id", req.RequestID,
		"client_id", req.Client.ClientID, "code", codeOf(err), "duration_ms", r.cfg.Now().Sub(start).Milliseconds())
	if err != nil {
		return r.reply(ctx, route, req.RequestID, err)
	}
	return r.send(ctx, route, &schemas.Response{RequestID: req.RequestID, Status: schemas.StatusOK, Result: result}, "")
}

// run runs the request's use case, retrying while its stores are
// unavailable, within the retry window and the request's deadline.
func (r *Requests) run(ctx context.Context, req *schemas.Request) (schemas.Result, error) {
	now := r.cfg.Now()
	until := now.Add(r.cfg.RetryWindow)
	if req.Deadline != nil {
		if !now.Before(*req.Deadline) {
			return nil, domain.Errorf(domain.CodeDeadlineExceeded, "deadline passed before the request was read")
		}
		if req.Deadline.Before(until) {
			until = *req.Deadline
		}
		var cancel context.CancelFunc
		ctx, cancel = context.WithDeadline(ctx, *req.Deadline)
		defer cancel()
	}
	backoff := 100 * time.Millisecond
	for {
		result, err := r.dispatch(ctx, req)
		if domain.ErrorCode(err) != domain.CodeUnavailable || r.cfg.Now().Add(backoff).After(until) {
			if err != nil && errors.Is(err, context.DeadlineExceeded) {
				err = &domain.Error{Code: domain.CodeDeadlineExceeded, Message: "deadline passed while handling the request", Err: err}
			}
			return result, err
		}
		r.cfg.Logger.Warn("store unavailable, retrying request", "request_id", req.RequestID, "backoff", backoff, "err", err)
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 2*time.Second)
	}
}

// dispatch runs the use case named by the request's operation.
func (r *Requests) dispatch(ctx context.Context, req *schemas.Request) (schemas.Result, error) {
	client := domain.Client{ID: req.Client.ClientID, IP: deref(req.Client.IP), UserAgent: deref(req.Client.UserAgent)}
	switch op := req.Operation.(type) {
	case *schemas.Register:
		res, err := r.uc.Register.Handle(ctx, handlers.Register{Email: op.Email, Password: op.Password, Client: client})
		if err != nil {
			return nil, err
		}
		return &schemas.RegisterResult{UserID: string(res.UserID)}, nil
	case *schemas.Login:
		res, err := r.uc.Login.Handle(ctx, handlers.Login{Email: op.Email, Password: op.Password, Client: client})
		if err != nil {
			return nil, err
		}
		return &schemas.LoginResult{
			UserID:                string(res.UserID),
			SessionID:             string(res.SessionID),
			AccessToken:           res.AccessToken.Token,
			AccessTokenExpiresAt:  res.AccessToken.ExpiresAt,
			RefreshToken:          res.RefreshToken,
			RefreshTokenExpiresAt: res.RefreshTokenExpiresAt,
		}, nil
	}
	return nil, domain.Errorf(domain.CodeInvalid, "unsupported operation %T", req.Operation)
}

// reply answers with an error.
func (r *Requests) reply(ctx context.Context, route producers.Route, requestID string, err error) error {
	code := domain.ErrorCode(err)
	status, ok := schemas.StatusFromCode(string(code))
	if !ok {
		code, status = domain.CodeInternal, schemas.StatusInternal
	}
	if code == domain.CodeInternal {
		r.cfg.Logger.Error("internal error", "request_id", requestID, "err", err)
	}
	e := &schemas.Error{Message: domain.ErrorMessage(err)}
	if de, ok := errors.AsType[*domain.Error](err); ok {
		if de.Field != "" {
			e.Field = &de.Field
		}
		if de.RetryAfter > 0 {
			ms := de.RetryAfter.Milliseconds()
			e.RetryAfterMs = &ms
		}
	}
	return r.send(ctx, route, &schemas.Response{RequestID: requestID, Status: status, Result: e}, code)
}

func (r *Requests) send(ctx context.Context, route producers.Route, resp *schemas.Response, code domain.Code) error {
	value, err := r.codec.EncodeResponse(resp)
	if err != nil {
		// A response the schema cannot carry is a bug; the caller still
		// gets an answer.
		r.cfg.Logger.Error("encode response", "request_id", resp.RequestID, "err", err)
		code = domain.CodeInternal
		value, err = r.codec.EncodeResponse(&schemas.Response{
			RequestID: resp.RequestID, Status: schemas.StatusInternal, Result: &schemas.Error{Message: "internal error"},
		})
		if err != nil {
			return fmt.Errorf("encode internal error response: %w", err)
		}
	}
	return r.replies.Send(ctx, route, code, value)
}

func opName(op schemas.Operation) string {
	switch op.(type) {
	case *schemas.Register:
		return "register"
	case *schemas.Login:
		return "login"
	}
	return fmt.Sprintf("%T", op)
}

func codeOf(err error) string {
	if err == nil {
		return "ok"
	}
	return string(domain.ErrorCode(err))
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
