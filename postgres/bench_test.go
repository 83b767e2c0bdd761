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
