package app_test

import (
	"context"
	"testing"
	"time"

	"github.com/authworker/authworker/app"
	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/schemas"
)

// TestNotifierWritesTheOutbox: a notification becomes an AuthNotification
// on the notifications topic, keyed by user, written only when its unit of
// work commits.
func TestNotifierWritesTheOutbox(t *testing.T) {
	codec, err := schemas.NewCodec(schemas.Config{})
	if err != nil {
		t.Fatal(err)
	}
	outbox := inmem.NewOutbox()
	n := app.NewNotifier(codec, outbox, "auth.notifications")
	at := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	x := domain.Notification{
		ID: "00000000-0000-7000-8000-000000000001", Kind: domain.NotifyPasswordReset, UserID: "00000000-0000-7000-8000-0000000000aa",
		Email: "ada@example.com", ClientID: "web", Code: "a-one-time-code", ExpiresAt: at.Add(15 * time.Minute), OccurredAt: at,
	}
	rollback := inmem.Transactor{}.InTx(context.Background(), func(ctx context.Context) error {
		if err := n.Notify(ctx, x); err != nil {
			t.Fatal(err)
		}
		return domain.Errorf(domain.CodeConflict, "rolled back")
	})
	if rollback == nil || len(outbox.Messages()) != 0 {
		t.Fatalf("a rolled-back notification was kept: %v", outbox.Messages())
	}
	if err := (inmem.Transactor{}).InTx(context.Background(), func(ctx context.Context) error { return n.Notify(ctx, x) }); err != nil {
		t.Fatal(err)
	}
	msgs := outbox.Messages()
	if len(msgs) != 1 || msgs[0].Topic != "auth.notifications" || string(msgs[0].Key) != string(x.UserID) {
		t.Fatalf("outbox %v, want one message on auth.notifications keyed by the user", msgs)
	}
	got, err := codec.DecodeNotification(context.Background(), msgs[0].Value)
	if err != nil {
		t.Fatal(err)
	}
	if got.NotificationID != x.ID || got.Kind != schemas.NotificationKind(x.Kind) || got.Email != "ada@example.com" ||
		got.Code == nil || *got.Code != x.Code || got.ExpiresAt == nil || !got.ExpiresAt.Equal(x.ExpiresAt) ||
		got.ClientID == nil || *got.ClientID != "web" || !got.OccurredAt.Equal(at) {
		t.Errorf("decoded %+v, want the notification", got)
	}
}
