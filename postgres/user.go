package postgres

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
)

const userStore = "user store"

// UserRepository stores users in the users table.
type UserRepository struct {
	db *DB
}

var _ domain.UserRepository = (*UserRepository)(nil)

// NewUserRepository returns a UserRepository on db.
func NewUserRepository(db *DB) *UserRepository {
	return &UserRepository{db: db}
}

const userColumns = `id, email, password_hash, status, created_at, updated_at, password_changed_at, email_verified_at`

// CreateUser implements domain.UserRepository. It returns CodeConflict
// "email already registered" when the address is taken, CodeConflict when
// the id is, and CodeInternal when the id is not a UUID. In a transaction
// it runs in a savepoint, so that a conflict leaves the transaction usable.
func (r *UserRepository) CreateUser(ctx context.Context, u *domain.User) error {
	s := u.Snapshot()
	if !domain.ValidID(string(s.ID)) {
		return domain.Errorf(domain.CodeInternal, "user id is not a UUID")
	}
	err := r.db.atomic(ctx, func(q querier) error {
		_, err := q.Exec(ctx,
			`INSERT INTO users (`+userColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
			string(s.ID), string(s.Email), s.PasswordHash, string(s.Status), dbTime(s.CreatedAt), dbTime(s.UpdatedAt),
			dbTime(s.PasswordChangedAt), nullTime(s.EmailVerifiedAt))
		return err
	})
	if err != nil {
		return fmt.Errorf("create user: %w", userError(err))
	}
	return nil
}

// UserByEmail implements domain.UserRepository.
func (r *UserRepository) UserByEmail(ctx context.Context, email domain.Email) (*domain.User, error) {
	u, err := scanUser(r.db.conn(ctx).QueryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE email = $1 AND status <> 'erased'`, string(email)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errUserNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", userError(err))
	}
	return u, nil
}

// UserByID implements domain.UserRepository.
func (r *UserRepository) UserByID(ctx context.Context, id domain.UserID) (*domain.User, error) {
	if !domain.ValidID(string(id)) {
		return nil, errUserNotFound()
	}
	u, err := scanUser(r.db.conn(ctx).QueryRow(ctx,
		`SELECT `+userColumns+` FROM users WHERE id = $1 AND status <> 'erased'`, string(id)))
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, errUserNotFound()
	}
	if err != nil {
		return nil, fmt.Errorf("load user: %w", userError(err))
	}
	return u, nil
}

// EraseUser implements domain.UserRepository: the row keeps its id, its
// creation time and the erasure time; the address becomes "erased:<id>",
// which no valid address equals, so the address is free again; the hash
// goes; the user's sessions lose their address and user agent; its codes
// are deleted. It runs in a transaction (a savepoint in an enclosing one),
// so all or nothing.
//
// The row is locked by a statement of its own before anything is erased.
// CreateSession and SaveCode share-lock it while they write, so the lock
// waits for those under way, and the erasing statement, whose snapshot is
// taken after, sees what they wrote; those that come later find the user
// erased.
func (r *UserRepository) EraseUser(ctx context.Context, id domain.UserID, now time.Time) error {
	if !domain.ValidID(string(id)) {
		return errUserNotFound()
	}
	return r.db.InTx(ctx, func(ctx context.Context) error { // a savepoint in a transaction
		q := r.db.conn(ctx)
		var found bool
		err := q.QueryRow(ctx,
			`SELECT true FROM users WHERE id = $1 AND status <> 'erased' FOR NO KEY UPDATE`, string(id)).Scan(&found)
		if errors.Is(err, pgx.ErrNoRows) {
			return errUserNotFound()
		}
		if err != nil {
			return fmt.Errorf("erase user: lock: %w", userError(err))
		}
		if _, err := q.Exec(ctx, `
			WITH u AS (
				UPDATE users SET email = 'erased:' || id::text, password_hash = '', status = 'erased',
					email_verified_at = NULL, erased_at = $2, updated_at = $2
				WHERE id = $1
				RETURNING id
			), s AS (
				UPDATE sessions SET ip = NULL, user_agent = NULL WHERE user_id IN (SELECT id FROM u)
			)
			DELETE FROM one_time_codes WHERE user_id IN (SELECT id FROM u)`, string(id), dbTime(now)); err != nil {
			return fmt.Errorf("erase user: %w", userError(err))
		}
		return nil
	})
}

// UpdateUser implements domain.UserRepository. The row stays locked (SELECT
// ... FOR NO KEY UPDATE: the id, which other rows reference, never changes,
// so their inserts' key-share checks need not wait) from load to commit,
// so concurrent updates of one user run
// one after the other, each seeing the last one's result. Nothing is written
// when update leaves the user unchanged. An id that is not a UUID names no
// user: CodeNotFound.
//
// In a transaction of DB.InTx its own transaction becomes a savepoint: a
// failure, update's error included, undoes only its own work, and its write
// commits or rolls back with the enclosing transaction. The row lock then
// lasts until that transaction ends, so concurrent updates of the user (a
// login's rehash, a password change) wait for the whole request.
func (r *UserRepository) UpdateUser(ctx context.Context, id domain.UserID, update func(*domain.User) error) error {
	if !domain.ValidID(string(id)) {
		return errUserNotFound()
	}
	return r.db.InTx(ctx, func(ctx context.Context) error { // a savepoint in a transaction
		q := r.db.conn(ctx)
		u, err := scanUser(q.QueryRow(ctx,
			`SELECT `+userColumns+` FROM users WHERE id = $1 AND status <> 'erased' FOR NO KEY UPDATE`, string(id)))
		if errors.Is(err, pgx.ErrNoRows) {
			return errUserNotFound()
		}
		if err != nil {
			return fmt.Errorf("update user: load: %w", userError(err))
		}
		before := u.Snapshot()
		if err := update(u); err != nil {
			return err
		}
		after := u.Snapshot()
		if after == before {
			return nil
		}
		if after.ID != before.ID {
			return domain.Errorf(domain.CodeInternal, "update changed the user id")
		}
		_, err = q.Exec(ctx,
			`UPDATE users SET email = $2, password_hash = $3, status = $4, updated_at = $5,
				password_changed_at = $6, email_verified_at = $7 WHERE id = $1`,
			string(after.ID), string(after.Email), after.PasswordHash, string(after.Status), dbTime(after.UpdatedAt),
			dbTime(after.PasswordChangedAt), nullTime(after.EmailVerifiedAt))
		if err != nil {
			return fmt.Errorf("update user: save: %w", userError(err))
		}
		return nil
	})
}

func scanUser(row pgx.Row) (*domain.User, error) {
	var (
		s                 domain.UserSnapshot
		id, email, status string
		verified          *time.Time
	)
	if err := row.Scan(&id, &email, &s.PasswordHash, &status, &s.CreatedAt, &s.UpdatedAt, &s.PasswordChangedAt, &verified); err != nil {
		return nil, err
	}
	s.ID, s.Email, s.Status = domain.UserID(id), domain.Email(email), domain.UserStatus(status)
	s.CreatedAt, s.UpdatedAt, s.PasswordChangedAt = s.CreatedAt.UTC(), s.UpdatedAt.UTC(), s.PasswordChangedAt.UTC()
	s.EmailVerifiedAt = fromNullTime(verified)
	return domain.RestoreUser(s), nil
}

// nullUserRow scans the userColumns of a LEFT JOIN that may have found no
// user.
type nullUserRow struct {
	id, email, hash, status             *string
	created, updated, changed, verified *time.Time
}

func (r *nullUserRow) targets() []any {
	return []any{&r.id, &r.email, &r.hash, &r.status, &r.created, &r.updated, &r.changed, &r.verified}
}

// user is the user scanned, or nil when the join found none.
func (r *nullUserRow) user() *domain.User {
	if r.id == nil {
		return nil
	}
	return domain.RestoreUser(domain.UserSnapshot{
		ID: domain.UserID(*r.id), Email: domain.Email(*r.email), PasswordHash: *r.hash, Status: domain.UserStatus(*r.status),
		CreatedAt: r.created.UTC(), UpdatedAt: r.updated.UTC(), PasswordChangedAt: r.changed.UTC(),
		EmailVerifiedAt: fromNullTime(r.verified),
	})
}

// prefixed qualifies each of a comma-separated list of columns with prefix,
// such as "u.".
func prefixed(prefix, columns string) string {
	return prefix + strings.ReplaceAll(columns, ", ", ", "+prefix)
}

func errUserNotFound() error {
	return domain.Errorf(domain.CodeNotFound, "user not found")
}

// userError translates err, naming the users constraints a caller can break.
func userError(err error) error {
	code, constraint := sqlState(err)
	if code == uniqueViolation {
		switch constraint {
		case "users_email_key":
			return &domain.Error{Code: domain.CodeConflict, Message: "email already registered", Err: err}
		case "users_pkey":
			return &domain.Error{Code: domain.CodeConflict, Message: "user already exists", Err: err}
		}
	}
	return storeError(userStore, err)
}
