package app

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// call is one request being answered: what the policies around its use
// case share.
type call struct {
	op     *operation
	req    *schemas.Request
	key    domain.RequestKey
	client domain.Client
	// digest identifies what the request asks: its operation, the
	// operation's fields and the reply topic. A stored outcome answers
	// only a request with the same digest.
	digest []byte
	// ad binds a sealed reply to its request: a reply stored for one
	// request cannot be opened as another's.
	ad []byte
	// until ends the retry window: the request's deadline or RetryWindow
	// after it was read, whichever is first.
	until time.Time
	// answered is the reply once the outcome is stored: with the use
	// case's writes, or by another delivery of the request.
	answered *Reply
	origin   Origin
	// events are those the use case recorded; the first published of them
	// are committed to the outbox.
	events    []domain.Event
	published int
	// needs are the stores the request needs.
	needs []Store
	// running is set once the use case started: its work (a hash, a
	// rotation) is done or under way, and worth retrying its writes for.
	running bool
	// refused is set when the request was answered UNAVAILABLE because a
	// store it needs is known down, before anything ran.
	refused bool
}

func (s *Service) newCall(req *schemas.Request, origin Origin) (*call, error) {
	op, ok := s.ops[reflect.TypeOf(req.Operation)]
	if !ok {
		// The codec decodes only the operations of the schema, and every
		// one of them is registered (TestRegistryCoversTheSchema).
		return nil, domain.Errorf(domain.CodeInternal, "no use case for operation %T", req.Operation)
	}
	key := domain.RequestKey{ClientID: req.Client.ClientID, RequestID: req.RequestID}
	if err := key.Validate(); err != nil {
		return nil, err
	}
	client, err := domain.ParseClient(req.Client.ClientID, deref(req.Client.IP), deref(req.Client.UserAgent))
	if err != nil {
		return nil, err
	}
	content, err := s.codec.OperationBytes(req.Operation)
	if err != nil {
		return nil, fmt.Errorf("digest request: %w", err)
	}
	digest := s.digests.Sum([]byte("request"), []byte(origin.ReplyTopic), content)
	until := s.cfg.Now().Add(s.cfg.RetryWindow)
	if req.Deadline != nil && req.Deadline.Before(until) {
		until = *req.Deadline
	}
	return &call{
		op:     op,
		req:    req,
		key:    key,
		client: client,
		digest: digest,
		origin: origin,
		ad:     append([]byte(key.ClientID+"\x00"+key.RequestID+"\x00"), digest...),
		until:  until,
		needs:  op.needs(req),
	}, nil
}

type callKey struct{}

// withCall returns ctx carrying c, for the unit of work the use case calls.
func withCall(ctx context.Context, c *call) context.Context {
	return context.WithValue(ctx, callKey{}, c)
}

// callOf returns the call ctx carries, or nil outside a request.
func callOf(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
