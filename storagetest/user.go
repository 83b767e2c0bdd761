package storagetest

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// testHash stands for an encoded password hash; repositories treat it as
// opaque text.
const testHash = "$argon2id$v=19$m=19456,t=2,p=1$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA"

// RunUserRepositoryTests runs the conformance suite of
// domain.UserRepository. newRepo returns an empty repository, cleaned up
// by t.Cleanup if need be; it is called once per subtest.
func RunUserRepositoryTests(t *testing.T, newRepo func(t *testing.T) domain.UserRepository) {
	tests := []struct {
		name string
		run  func(t *testing.T, users domain.UserRepository)
	}{
		{"CreateAndLoad", testCreateAndLoad},
		{"DuplicateEmail", testDuplicateEmail},
		{"DuplicateID", testDuplicateID},
		{"NotFound", testUserNotFound},
		{"UpdateUserSavesChanges", testUpdateUserSavesChanges},
		{"UpdateUserWithoutChanges", testUpdateUserWithoutChanges},
		{"UpdateUserClosureErrorRollsBack", testUpdateUserClosureErrorRollsBack},
		{"UpdateUserConcurrent", testUpdateUserConcurrent},
		{"ReturnedUserIsACopy", testReturnedUserIsACopy},
		{"UserByID", testUserByID},
		{"LifecycleTimesRoundTrip", testLifecycleTimesRoundTrip},
		{"EraseUser", testEraseUser},
		{"EraseUserTwice", testEraseUserTwice},
		{"EraseUnknownUser", testEraseUnknownUser},
		{"UpdateErasedUserNotFound", testUpdateErasedUserNotFound},
		{"CanceledContext", testUserCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.run(t, newRepo(t))
		})
	}
}

// newUser returns a new active user with a unique address.
func newUser(tb testing.TB, id domain.UserID, email domain.Email) *domain.User {
	tb.Helper()
	u, err := domain.NewUser(id, email, testHash, baseTime)
	if err != nil {
		tb.Fatal(err)
	}
	return u
}

// createUser stores a new active user with a unique address.
func createUser(tb testing.TB, users domain.UserRepository) *domain.User {
	tb.Helper()
	u := newUser(tb, domain.UserID(NewUUID()), uniqueEmail())
	if err := users.CreateUser(context.Background(), u); err != nil {
		tb.Fatalf("CreateUser: %v", err)
	}
	return u
}

// loadUser returns the user with the address.
func loadUser(tb testing.TB, users domain.UserRepository, email domain.Email) *domain.User {
	tb.Helper()
	u, err := users.UserByEmail(context.Background(), email)
	if err != nil {
		tb.Fatalf("UserByEmail: %v", err)
	}
	return u
}

// checkUser reports an error unless got is want as stored.
func checkUser(tb testing.TB, got *domain.User, want domain.UserSnapshot) {
	tb.Helper()
	g := got.Snapshot()
	if g.ID != want.ID || g.Email != want.Email || g.PasswordHash != want.PasswordHash || g.Status != want.Status {
		tb.Errorf("user = %s, want %s", describe(g), describe(want))
	}
	checkTime(tb, "CreatedAt", g.CreatedAt, want.CreatedAt)
	checkTime(tb, "UpdatedAt", g.UpdatedAt, want.UpdatedAt)
	checkTime(tb, "PasswordChangedAt", g.PasswordChangedAt, want.PasswordChangedAt)
	checkTime(tb, "EmailVerifiedAt", g.EmailVerifiedAt, want.EmailVerifiedAt)
}

// loadUserByID returns the user with the id.
func loadUserByID(tb testing.TB, users domain.UserRepository, id domain.UserID) *domain.User {
	tb.Helper()
	u, err := users.UserByID(context.Background(), id)
	if err != nil {
		tb.Fatalf("UserByID: %v", err)
	}
	return u
}

// eraseUser erases the user at baseTime plus an hour.
func eraseUser(tb testing.TB, users domain.UserRepository, id domain.UserID) {
	tb.Helper()
	if err := users.EraseUser(context.Background(), id, baseTime.Add(time.Hour)); err != nil {
		tb.Fatalf("EraseUser: %v", err)
	}
}

func testCreateAndLoad(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	got, err := users.UserByEmail(context.Background(), u.Email())
	if err != nil {
		t.Fatalf("UserByEmail: %v", err)
	}
	checkUser(t, got, u.Snapshot())
}

func testDuplicateEmail(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	other := newUser(t, domain.UserID(NewUUID()), u.Email())
	err := users.CreateUser(context.Background(), other)
	checkCode(t, "CreateUser with a taken address", err, domain.CodeConflict)
	if got, want := domain.ErrorMessage(err), "email already registered"; got != want {
		t.Errorf("message = %q, want %q", got, want)
	}
	got := loadUser(t, users, u.Email())
	checkUser(t, got, u.Snapshot())
}

func testDuplicateID(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	other := newUser(t, u.ID(), uniqueEmail())
	checkCode(t, "CreateUser with a taken id", users.CreateUser(context.Background(), other), domain.CodeConflict)
	_, err := users.UserByEmail(context.Background(), other.Email())
	checkCode(t, "UserByEmail after a failed CreateUser", err, domain.CodeNotFound)
}

func testUserNotFound(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	createUser(t, users) // a store that is not empty
	_, err := users.UserByEmail(ctx, uniqueEmail())
	checkCode(t, "UserByEmail", err, domain.CodeNotFound)

	for _, id := range []domain.UserID{domain.UserID(NewUUID()), "not-a-uuid", ""} {
		called := false
		err := users.UpdateUser(ctx, id, func(*domain.User) error { called = true; return nil })
		checkCode(t, "UpdateUser("+string(id)+")", err, domain.CodeNotFound)
		if called {
			t.Errorf("UpdateUser(%q) called update for a missing user", id)
		}
	}
}

func testUpdateUserSavesChanges(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	later := baseTime.Add(time.Hour + 42*time.Nanosecond)
	err := users.UpdateUser(ctx, u.ID(), func(got *domain.User) error {
		checkUser(t, got, u.Snapshot())
		got.Disable(later)
		return got.SetPasswordHash("rehashed", later)
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := u.Snapshot()
	want.PasswordHash, want.Status, want.UpdatedAt = "rehashed", domain.UserDisabled, later
	checkUser(t, loadUser(t, users, u.Email()), want)
}

func testUpdateUserWithoutChanges(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	if err := users.UpdateUser(ctx, u.ID(), func(*domain.User) error { return nil }); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	checkUser(t, loadUser(t, users, u.Email()), u.Snapshot())
}

func testUpdateUserClosureErrorRollsBack(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	refusal := domain.Errorf(domain.CodeUnauthorized, "current password does not match")
	err := users.UpdateUser(ctx, u.ID(), func(got *domain.User) error {
		got.Disable(baseTime.Add(time.Hour))
		if err := got.SetPasswordHash("changed", baseTime.Add(time.Hour)); err != nil {
			return err
		}
		return refusal
	})
	if !errors.Is(err, refusal) {
		t.Errorf("UpdateUser error = %v, want the closure's error", err)
	}
	checkCode(t, "UpdateUser", err, domain.CodeUnauthorized)
	checkUser(t, loadUser(t, users, u.Email()), u.Snapshot())
}

// testUpdateUserConcurrent checks the row lock: each update appends to the
// hash what it read, so a lost update shows as a short hash.
func testUpdateUserConcurrent(t *testing.T, users domain.UserRepository) {
	const n = 16
	ctx := context.Background()
	u := createUser(t, users)
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Go(func() {
			errs <- users.UpdateUser(ctx, u.ID(), func(got *domain.User) error {
				// Widen the window in which an unlocked store would let
				// another update read the same hash.
				time.Sleep(2 * time.Millisecond)
				return got.SetPasswordHash(got.PasswordHash()+"x", baseTime.Add(time.Duration(i)*time.Second))
			})
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("UpdateUser: %v", err)
		}
	}
	got := loadUser(t, users, u.Email())
	if got, want := len(got.PasswordHash()), len(testHash)+n; got != want {
		t.Errorf("hash length after %d concurrent updates = %d, want %d (updates lost)", n, got, want)
	}
}

func testReturnedUserIsACopy(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	want := u.Snapshot()
	u.Disable(baseTime.Add(time.Hour)) // the caller's copy, not the stored user
	got := loadUser(t, users, want.Email)
	checkUser(t, got, want)
	if err := got.SetPasswordHash("changed", baseTime.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	checkUser(t, loadUser(t, users, want.Email), want)
	var kept *domain.User
	if err := users.UpdateUser(ctx, want.ID, func(u *domain.User) error { kept = u; return nil }); err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	kept.Disable(baseTime.Add(time.Hour)) // after UpdateUser returned
	checkUser(t, loadUser(t, users, want.Email), want)
}

func testUserByID(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	createUser(t, users) // another user, not to be returned
	tests := []struct {
		name string
		id   domain.UserID
		want *domain.User // nil: not found
	}{
		{"Found", u.ID(), u},
		{"NotFound", domain.UserID(NewUUID()), nil},
		{"NotAUUID", "not-a-uuid", nil},
		{"Empty", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := users.UserByID(context.Background(), tt.id)
			if tt.want == nil {
				checkCode(t, "UserByID("+string(tt.id)+")", err, domain.CodeNotFound)
				return
			}
			if err != nil {
				t.Fatalf("UserByID: %v", err)
			}
			checkUser(t, got, tt.want.Snapshot())
		})
	}
}

// testLifecycleTimesRoundTrip: when the password was set and the address
// verified survive CreateUser and UpdateUser; an address never verified
// stays unverified.
func testLifecycleTimesRoundTrip(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	unverified := createUser(t, users)
	if got := loadUserByID(t, users, unverified.ID()); got.EmailVerified() {
		t.Errorf("EmailVerified() of a new user = true, want false")
	}
	checkUser(t, loadUserByID(t, users, unverified.ID()), unverified.Snapshot())

	verified := newUser(t, domain.UserID(NewUUID()), uniqueEmail())
	verified.VerifyEmail(baseTime.Add(time.Minute + 7*time.Nanosecond))
	if err := users.CreateUser(ctx, verified); err != nil {
		t.Fatalf("CreateUser: %v", err)
	}
	checkUser(t, loadUserByID(t, users, verified.ID()), verified.Snapshot())

	changed, verifiedAt := baseTime.Add(2*time.Hour+11*time.Nanosecond), baseTime.Add(3*time.Hour+13*time.Nanosecond)
	err := users.UpdateUser(ctx, unverified.ID(), func(u *domain.User) error {
		if err := u.ChangePassword("changed", changed); err != nil {
			return err
		}
		u.VerifyEmail(verifiedAt)
		return nil
	})
	if err != nil {
		t.Fatalf("UpdateUser: %v", err)
	}
	want := unverified.Snapshot()
	want.PasswordHash, want.PasswordChangedAt, want.EmailVerifiedAt, want.UpdatedAt = "changed", changed, verifiedAt, verifiedAt
	checkUser(t, loadUserByID(t, users, want.ID), want)
	checkUser(t, loadUser(t, users, want.Email), want)
}

// testEraseUser: an erased user is found by no lookup, and its address may
// register again; other users are untouched.
func testEraseUser(t *testing.T, users domain.UserRepository) {
	ctx := context.Background()
	u, other := createUser(t, users), createUser(t, users)
	eraseUser(t, users, u.ID())

	_, err := users.UserByID(ctx, u.ID())
	checkCode(t, "UserByID of an erased user", err, domain.CodeNotFound)
	_, err = users.UserByEmail(ctx, u.Email())
	checkCode(t, "UserByEmail of an erased user", err, domain.CodeNotFound)
	checkUser(t, loadUserByID(t, users, other.ID()), other.Snapshot())

	again := newUser(t, domain.UserID(NewUUID()), u.Email())
	if err := users.CreateUser(ctx, again); err != nil {
		t.Fatalf("CreateUser with an erased user's address: %v", err)
	}
	checkUser(t, loadUser(t, users, u.Email()), again.Snapshot())
}

func testEraseUserTwice(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	eraseUser(t, users, u.ID())
	err := users.EraseUser(context.Background(), u.ID(), baseTime.Add(2*time.Hour))
	checkCode(t, "EraseUser of an erased user", err, domain.CodeNotFound)
}

func testEraseUnknownUser(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users) // a store that is not empty
	for _, id := range []domain.UserID{domain.UserID(NewUUID()), "not-a-uuid", ""} {
		err := users.EraseUser(context.Background(), id, baseTime.Add(time.Hour))
		checkCode(t, "EraseUser("+string(id)+")", err, domain.CodeNotFound)
	}
	checkUser(t, loadUserByID(t, users, u.ID()), u.Snapshot())
}

func testUpdateErasedUserNotFound(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	eraseUser(t, users, u.ID())
	called := false
	err := users.UpdateUser(context.Background(), u.ID(), func(*domain.User) error { called = true; return nil })
	checkCode(t, "UpdateUser of an erased user", err, domain.CodeNotFound)
	if called {
		t.Error("UpdateUser called update for an erased user")
	}
}

func testUserCanceledContext(t *testing.T, users domain.UserRepository) {
	u := createUser(t, users)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := users.CreateUser(ctx, newUser(t, domain.UserID(NewUUID()), uniqueEmail())); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateUser error = %v, want context.Canceled in the chain", err)
	}
	if _, err := users.UserByEmail(ctx, u.Email()); !errors.Is(err, context.Canceled) {
		t.Errorf("UserByEmail error = %v, want context.Canceled in the chain", err)
	}
	called := false
	err := users.UpdateUser(ctx, u.ID(), func(*domain.User) error { called = true; return nil })
	if !errors.Is(err, context.Canceled) {
		t.Errorf("UpdateUser error = %v, want context.Canceled in the chain", err)
	}
	if called {
		t.Error("UpdateUser called update with a cancelled context")
	}
	_, err = users.UserByID(ctx, u.ID())
	checkCanceled(t, "UserByID", err)
	checkCanceled(t, "EraseUser", users.EraseUser(ctx, u.ID(), baseTime.Add(time.Hour)))
	checkUser(t, loadUserByID(t, users, u.ID()), u.Snapshot()) // not erased
}
