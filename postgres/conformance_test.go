package postgres_test

import (
	"testing"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/storagetest"
)

func TestUserRepository(t *testing.T) {
	storagetest.RunUserRepositoryTests(t, func(t *testing.T) domain.UserRepository {
		db, _ := openDB(t)
		return postgres.NewUserRepository(db)
	})
}

func TestSessionRepository(t *testing.T) {
	storagetest.RunSessionRepositoryTests(t, func(t *testing.T) (domain.UserRepository, domain.SessionRepository, domain.Transactor) {
		db, _ := openDB(t)
		return postgres.NewUserRepository(db), postgres.NewSessionRepository(db), db
	})
}

func TestCodeRepository(t *testing.T) {
	storagetest.RunCodeRepositoryTests(t, func(t *testing.T) (domain.UserRepository, domain.CodeRepository) {
		db, _ := openDB(t)
		return postgres.NewUserRepository(db), postgres.NewCodeRepository(db)
	})
}

func TestSigningKeyRepository(t *testing.T) {
	storagetest.RunSigningKeyRepositoryTests(t, func(t *testing.T) domain.SigningKeyRepository {
		db, _ := openDB(t)
		return postgres.NewSigningKeyRepository(db)
	})
}

func TestOutcomeRepository(t *testing.T) {
	storagetest.RunOutcomeRepositoryTests(t, func(t *testing.T) domain.OutcomeRepository {
		db, _ := openDB(t)
		return postgres.NewOutcomeRepository(db)
	})
}
