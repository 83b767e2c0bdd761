package app

import (
	"context"
	"fmt"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/schemas"
)

// Notifier implements domain.Notifier: it writes each notification to the
// outbox as an AuthNotification for the notifications topic, keyed by user
// id, in the unit of work that decided it. The relay publishes it once that
// commits.
type Notifier struct {
	codec  *schemas.Codec
	outbox domain.Outbox
	topic  string
}

var _ domain.Notifier = (*Notifier)(nil)

// NewNotifier returns a Notifier writing to outbox for topic.
func NewNotifier(codec *schemas.Codec, outbox domain.Outbox, topic string) *Notifier {
	return &Notifier{codec: codec, outbox: outbox, topic: topic}
}

// Notify implements domain.Notifier.
func (n *Notifier) Notify(ctx context.Context, x domain.Notification) error {
	value, err := n.codec.EncodeNotification(notification(x))
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	return n.outbox.Enqueue(ctx, domain.OutboxMessage{
		Topic: n.topic, Key: []byte(x.UserID), Value: value, CreatedAt: x.OccurredAt,
	})
}

// notification is x on the wire.
func notification(x domain.Notification) *schemas.Notification {
	n := &schemas.Notification{
		NotificationID: x.ID,
		OccurredAt:     x.OccurredAt,
		UserID:         string(x.UserID),
		Email:          string(x.Email),
		Kind:           schemas.NotificationKind(x.Kind),
	}
	if x.ClientID != "" {
		n.ClientID = &x.ClientID
	}
	if x.Code != "" {
		n.Code = &x.Code
	}
	if !x.ExpiresAt.IsZero() {
		expires := x.ExpiresAt.Truncate(time.Millisecond)
		n.ExpiresAt = &expires
	}
	return n
}
