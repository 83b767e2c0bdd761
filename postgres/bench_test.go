package postgres_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
)

// benchUsers returns n users with distinct addresses.
func benchUsers(b *testing.B, n int) []*domain.User {
	b.Helper()
	now := time.Now()
	us := make([]*domain.User, n)
	for i := range us {
		u, err := domain.NewUser(domain.UserID(storagetest.NewUUID()), domain.Email(fmt.Sprintf("user%d@example.com", i)),
			"$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", now)
		if err != nil {
			b.Fatal(err)
		}
		us[i] = u
	}
	return us
}

func BenchmarkCreateUser(b *testing.B) {
	db, _ := openDB(b)
	users := postgres.NewUserRepository(db)
	us := benchUsers(b, b.N)
	ctx := context.Background()
	b.ResetTimer()
	for i := range b.N {
		if err := users.CreateUser(ctx, us[i]); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkUserByEmail(b *testing.B) {
	db, _ := openDB(b)
	users := postgres.NewUserRepository(db)
	us := benchUsers(b, 1000)
	ctx := context.Background()
	for _, u := range us {
		if err := users.CreateUser(ctx, u); err != nil {
			b.Fatal(err)
		}
	}
	b.ResetTimer()
	for i := range b.N {
		if _, err := users.UserByEmail(ctx, us[i%len(us)].Email()); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOutboxEnqueue measures what Enqueue adds to a use case's
// transaction: each transaction saves a request outcome, as every use case
// does, and Messages=1 and Messages=10 enqueue besides; Messages=0 is the
// baseline. Parallel runs show the commits of notifying transactions
// queueing on PostgreSQL's notification lock.
func BenchmarkOutboxEnqueue(b *testing.B) {
	db, _ := openDB(b)
	outbox := postgres.NewOutbox(db, newSealer(b))
	outcomes := postgres.NewOutcomeRepository(db)
	ctx := context.Background()
	unitOfWork := func(msgs []domain.OutboxMessage) error {
		return db.InTx(ctx, func(ctx context.Context) error {
			if err := outcomes.SaveOutcome(ctx, storagetest.NewOutcome("bench")); err != nil {
				return err
			}
			if len(msgs) == 0 {
				return nil
			}
			return outbox.Enqueue(ctx, msgs...)
		})
	}
	// messages returns n messages for one user, as a use case enqueues
	// them: each transaction's user is another, as under real load, where
	// transactions for one user wait for each other.
	messages := func(n int) []domain.OutboxMessage {
		user := storagetest.NewUUID()
		msgs := make([]domain.OutboxMessage, n)
		for i := range msgs {
			msgs[i] = storagetest.NewOutboxMessage("auth.events", user, i)
		}
		return msgs
	}
	for _, n := range []int{0, 1, 10} {
		b.Run(fmt.Sprintf("Messages=%d", n), func(b *testing.B) {
			for b.Loop() {
				if err := unitOfWork(messages(n)); err != nil {
					b.Fatal(err)
				}
			}
		})
		if n > 1 {
			continue
		}
		b.Run(fmt.Sprintf("Parallel/Messages=%d", n), func(b *testing.B) {
			b.SetParallelism(4) // beside GOMAXPROCS: transactions wait on the server, not on the CPU
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if err := unitOfWork(messages(n)); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// acknowledger is a publisher that acknowledges everything at once: the
// relay's throughput without a broker.
type acknowledger struct{}

func (acknowledger) Publish(_ context.Context, msgs []domain.OutboxMessage) []error {
	return make([]error, len(msgs))
}

// BenchmarkOutboxRelay measures how fast one relay drains the outbox, in
// messages per second, with a publisher that acknowledges at once: the
// PostgreSQL side of the relay. Keys=distinct is the usual case; with few
// keys each round is cut into a wave per message of a key.
func BenchmarkOutboxRelay(b *testing.B) {
	db, _ := openDB(b)
	outbox := postgres.NewOutbox(db, newSealer(b))
	for _, keys := range []int{0, 10} {
		name := "Keys=distinct"
		if keys > 0 {
			name = fmt.Sprintf("Keys=%d", keys)
		}
		b.Run(name, func(b *testing.B) {
			fillOutbox(b, db, outbox, b.N, keys)
			relay, err := postgres.NewOutboxRelay(outbox, postgres.OutboxRelayConfig{Publisher: acknowledger{}})
			if err != nil {
				b.Fatal(err)
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan struct{})
			b.ResetTimer()
			go func() { defer close(done); relay.Run(ctx) }()
			for relay.Stats().Published < uint64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			cancel()
			<-done
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "msgs/s")
		})
	}
}

// fillOutbox enqueues n messages, over keys keys or each of its own when
// keys is 0, in transactions of up to 1000.
func fillOutbox(b *testing.B, db *postgres.DB, outbox *postgres.Outbox, n, keys int) {
	b.Helper()
	for start := 0; start < n; start += 1000 {
		msgs := make([]domain.OutboxMessage, 0, 1000)
		for i := start; i < n && i < start+1000; i++ {
			key := storagetest.NewUUID()
			if keys > 0 {
				key = fmt.Sprintf("user-%d", i%keys)
			}
			msgs = append(msgs, storagetest.NewOutboxMessage("auth.events", key, i))
		}
		if err := db.InTx(context.Background(), func(ctx context.Context) error {
			return outbox.Enqueue(ctx, msgs...)
		}); err != nil {
			b.Fatal(err)
		}
	}
}
