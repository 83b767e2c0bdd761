package handlers_test

import (
	"context"
	"crypto/rand"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/handlers"
	"github.com/authworker/authworker/inmem"
)

const (
	veraID  = domain.UserID("00000000-0000-7000-8000-0000000000e1")
	codeTTL = 15 * time.Minute
)

// codesFixture holds the stores and fakes of the use cases of one-time
// codes, over in-memory stores holding ada@example.com (active, address not
// verified), vera@example.com (active, verified) and dora@example.com
// (disabled). Its clock stands still unless a test moves it.
type codesFixture struct {
	users       *inmem.UserRepository
	codes       *inmem.CodeRepository
	sessions    *inmem.SessionRepository
	work        *fakeWork
	notifier    *recordingNotifier
	events      *recordingEvents
	limiter     *fakeLimiter
	accounts    *fakeLimiter
	hasher      *fakeHasher
	throttle    *fakeThrottle
	revocations *fakeRevocationList
	clock       *steppingClock
	sleeps      *sleepRecorder
}

func newCodesFixture(t *testing.T) *codesFixture {
	t.Helper()
	work := &fakeWork{}
	f := &codesFixture{
		users:       inmem.NewUserRepository(),
		work:        work,
		notifier:    &recordingNotifier{work: work},
		events:      &recordingEvents{work: work},
		limiter:     &fakeLimiter{limit: 100},
		accounts:    &fakeLimiter{limit: 100},
		hasher:      &fakeHasher{work: work},
		throttle:    newFakeThrottle(3),
		revocations: &fakeRevocationList{},
		clock:       &steppingClock{now: testNow},
		sleeps:      &sleepRecorder{},
	}
	f.codes = inmem.NewCodeRepository(f.users)
	f.sessions = inmem.NewSessionRepository(f.users)
	for _, u := range []struct {
		id       domain.UserID
		email    domain.Email
		verified bool
		disabled bool
	}{
		{adaID, "ada@example.com", false, false},
		{veraID, "vera@example.com", true, false},
		{doraID, "dora@example.com", false, true},
	} {
		user, err := domain.NewUser(u.id, u.email, "hash:"+goodPassword, testNow.Add(-time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		if u.verified {
			user.VerifyEmail(testNow.Add(-time.Hour))
		}
		if u.disabled {
			user.Disable(testNow.Add(-time.Hour))
		}
		if err := f.users.CreateUser(context.Background(), user); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// requestDeps are the collaborators of the use cases that send codes.
func (f *codesFixture) requestDeps() handlers.CodeRequestDeps {
	return handlers.CodeRequestDeps{
		Work: f.work, Users: f.users, Codes: f.codes, Notifier: f.notifier, Events: f.events,
		Limiter: f.limiter, AccountLimiter: f.accounts,
		NewID: sequentialIDs(), Now: f.clock.Now, Random: rand.Reader, Sleep: f.sleeps.sleep,
	}
}

// issueCode stores a code for the user and purpose, valid for ttl from
// now, and returns it.
func (f *codesFixture) issueCode(t *testing.T, user domain.UserID, purpose domain.CodePurpose, ttl time.Duration) string {
	t.Helper()
	code, stored, err := domain.NewOneTimeCode(rand.Reader, user, purpose, f.clock.Now(), ttl)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.codes.SaveCode(context.Background(), stored); err != nil {
		t.Fatal(err)
	}
	return code
}

// user returns the stored user with the id.
func (f *codesFixture) user(t *testing.T, id domain.UserID) *domain.User {
	t.Helper()
	u, err := f.users.UserByID(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return u
}
