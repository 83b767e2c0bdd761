package postgres

import (
	"context"
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/testenv"
)

// TestRelayConnectionIsProbed: the server probes a relay's connection, so
// that a relay cut off without closing it loses its shards in about half a
// minute; the connection is named after the pool's application.
func TestRelayConnectionIsProbed(t *testing.T) {
	ctx := context.Background()
	db, err := Open(ctx, Config{URL: testenv.Database(t)})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	r, err := NewOutboxRelay(NewOutbox(db, nil), OutboxRelayConfig{Publisher: nopPublisher{}})
	if err != nil {
		t.Fatal(err)
	}
	conn, err := r.connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for setting, want := range map[string]string{
		"tcp_keepalives_idle": "10", "tcp_keepalives_interval": "5", "tcp_keepalives_count": "3",
		"application_name": "authworker outbox relay",
	} {
		var got string
		if err := conn.QueryRow(ctx, "SELECT current_setting($1)", setting).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != want {
			t.Errorf("%s = %q on the relay's connection, want %q", setting, got, want)
		}
	}
}

type nopPublisher struct{}

func (nopPublisher) Publish(_ context.Context, msgs []domain.OutboxMessage) []error {
	return make([]error, len(msgs))
}
