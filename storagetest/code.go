package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// RunCodeRepositoryTests runs the conformance suite of
// domain.CodeRepository. newRepos returns empty repositories, the code
// repository storing codes for the users of the user repository; it is
// called once per subtest.
func RunCodeRepositoryTests(t *testing.T, newRepos func(t *testing.T) (domain.UserRepository, domain.CodeRepository)) {
	tests := []struct {
		name string
		run  func(t *testing.T, users domain.UserRepository, codes domain.CodeRepository)
	}{
		{"SaveAndLoad", testSaveAndLoadCode},
		{"SaveReplacesAndResetsAttempts", testSaveCodeReplaces},
		{"PurposesAreIndependent", testCodePurposesAreIndependent},
		{"NotFound", testCodeNotFound},
		{"SaveCodeForErasedUser", testSaveCodeForErasedUser},
		{"ConsumeCode", testConsumeCode},
		{"ConsumeTwice", testConsumeCodeTwice},
		{"ConsumeConcurrently", testConsumeCodeConcurrently},
		{"CountFailedAttempt", testCountFailedAttempt},
		{"EraseUserDeletesCodes", testEraseUserDeletesCodes},
		{"EraseWhileSavingCodes", testEraseWhileSavingCodes},
		{"CanceledContext", testCodeCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			users, codes := newRepos(t)
			tt.run(t, users, codes)
		})
	}
}

// codeTTL is how long the codes of the suite live.
const codeTTL = 15 * time.Minute

// newCode returns a code for the user and purpose drawn at baseTime, and
// its stored half.
func newCode(tb testing.TB, user domain.UserID, purpose domain.CodePurpose) (string, domain.OneTimeCode) {
	tb.Helper()
	code, c, err := domain.NewOneTimeCode(rand.Reader, user, purpose, baseTime, codeTTL)
	if err != nil {
		tb.Fatal(err)
	}
	return code, c
}

// saveCode stores a new code for the user and purpose and returns it.
func saveCode(tb testing.TB, codes domain.CodeRepository, user domain.UserID, purpose domain.CodePurpose) domain.OneTimeCode {
	tb.Helper()
	_, c := newCode(tb, user, purpose)
	if err := codes.SaveCode(context.Background(), c); err != nil {
		tb.Fatalf("SaveCode: %v", err)
	}
	return c
}

// loadCode returns the user's stored code for the purpose.
func loadCode(tb testing.TB, codes domain.CodeRepository, user domain.UserID, purpose domain.CodePurpose) domain.OneTimeCode {
	tb.Helper()
	c, err := codes.Code(context.Background(), user, purpose)
	if err != nil {
		tb.Fatalf("Code(%s, %s): %v", user, purpose, err)
	}
	return c
}

// countFailures counts n wrong codes for the user's code for the purpose.
func countFailures(tb testing.TB, codes domain.CodeRepository, user domain.UserID, purpose domain.CodePurpose, n int) {
	tb.Helper()
	for range n {
		if err := codes.CountFailedAttempt(context.Background(), user, purpose); err != nil {
			tb.Fatalf("CountFailedAttempt: %v", err)
		}
	}
}

// consume reports whether ConsumeCode took the code with the hash at now.
func consume(tb testing.TB, codes domain.CodeRepository, user domain.UserID, purpose domain.CodePurpose, hash []byte, now time.Time) bool {
	tb.Helper()
	ok, err := codes.ConsumeCode(context.Background(), user, purpose, hash, now)
	if err != nil {
		tb.Fatalf("ConsumeCode: %v", err)
	}
	return ok
}

// checkOneTimeCode reports an error unless got is want as stored.
func checkOneTimeCode(tb testing.TB, got, want domain.OneTimeCode) {
	tb.Helper()
	if got.UserID != want.UserID || got.Purpose != want.Purpose || !bytes.Equal(got.Hash, want.Hash) || got.Attempts != want.Attempts {
		tb.Errorf("code = %s %s %x attempts %d, want %s %s %x attempts %d",
			got.UserID, got.Purpose, got.Hash, got.Attempts, want.UserID, want.Purpose, want.Hash, want.Attempts)
	}
	checkTime(tb, "code CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(tb, "code ExpiresAt", got.ExpiresAt, want.ExpiresAt)
}

// checkNoCode reports an error unless the user has no code for the purpose.
func checkNoCode(tb testing.TB, codes domain.CodeRepository, user domain.UserID, purpose domain.CodePurpose) {
	tb.Helper()
	_, err := codes.Code(context.Background(), user, purpose)
	checkCode(tb, "Code("+string(user)+", "+string(purpose)+")", err, domain.CodeNotFound)
}

func testSaveAndLoadCode(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u := createUser(t, users)
	code, c := newCode(t, u.ID(), domain.CodePasswordReset)
	if err := codes.SaveCode(context.Background(), c); err != nil {
		t.Fatalf("SaveCode: %v", err)
	}
	got := loadCode(t, codes, u.ID(), domain.CodePasswordReset)
	checkOneTimeCode(t, got, c)
	if !got.Matches(code, baseTime) {
		t.Error("the loaded code does not match the code drawn")
	}
}

// testSaveCodeReplaces: a new code voids the user's earlier one for the
// purpose and starts with all its attempts.
func testSaveCodeReplaces(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u := createUser(t, users)
	old := saveCode(t, codes, u.ID(), domain.CodePasswordReset)
	countFailures(t, codes, u.ID(), domain.CodePasswordReset, domain.MaxCodeAttempts)
	_, c := newCode(t, u.ID(), domain.CodePasswordReset)
	c.CreatedAt, c.ExpiresAt = baseTime.Add(time.Minute), baseTime.Add(time.Minute+codeTTL)
	if err := codes.SaveCode(context.Background(), c); err != nil {
		t.Fatalf("SaveCode again: %v", err)
	}
	checkOneTimeCode(t, loadCode(t, codes, u.ID(), domain.CodePasswordReset), c)
	if consume(t, codes, u.ID(), domain.CodePasswordReset, old.Hash, baseTime.Add(2*time.Minute)) {
		t.Error("ConsumeCode took the replaced code")
	}
	if !consume(t, codes, u.ID(), domain.CodePasswordReset, c.Hash, baseTime.Add(2*time.Minute)) {
		t.Error("ConsumeCode refused the new code, whose attempts were reset")
	}
}

func testCodePurposesAreIndependent(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u := createUser(t, users)
	reset := saveCode(t, codes, u.ID(), domain.CodePasswordReset)
	verify := saveCode(t, codes, u.ID(), domain.CodeEmailVerification)
	countFailures(t, codes, u.ID(), domain.CodePasswordReset, 2)

	want := reset
	want.Attempts = 2
	checkOneTimeCode(t, loadCode(t, codes, u.ID(), domain.CodePasswordReset), want)
	checkOneTimeCode(t, loadCode(t, codes, u.ID(), domain.CodeEmailVerification), verify)

	if consume(t, codes, u.ID(), domain.CodeEmailVerification, reset.Hash, baseTime) {
		t.Error("ConsumeCode took the reset code for the verification")
	}
	if !consume(t, codes, u.ID(), domain.CodePasswordReset, reset.Hash, baseTime) {
		t.Fatal("ConsumeCode refused the reset code")
	}
	checkNoCode(t, codes, u.ID(), domain.CodePasswordReset)
	checkOneTimeCode(t, loadCode(t, codes, u.ID(), domain.CodeEmailVerification), verify)
}

func testCodeNotFound(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	saveCode(t, codes, u.ID(), domain.CodePasswordReset) // a store that is not empty
	checkNoCode(t, codes, u.ID(), domain.CodeEmailVerification)
	for _, id := range []domain.UserID{domain.UserID(NewUUID()), "not-a-uuid"} {
		_, c := newCode(t, id, domain.CodePasswordReset)
		checkCode(t, "SaveCode for user "+string(id), codes.SaveCode(ctx, c), domain.CodeNotFound)
		checkNoCode(t, codes, id, domain.CodePasswordReset)
	}
}

// testSaveCodeForErasedUser: an erased user, like a deleted one, gets no
// code: no lookup finds it, so none could be used.
func testSaveCodeForErasedUser(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u := createUser(t, users)
	eraseUser(t, users, u.ID())
	_, c := newCode(t, u.ID(), domain.CodePasswordReset)
	checkCode(t, "SaveCode for an erased user", codes.SaveCode(context.Background(), c), domain.CodeNotFound)
	checkNoCode(t, codes, u.ID(), domain.CodePasswordReset)
}

// testConsumeCode: a code is taken only with its hash, before it expires
// and while it has attempts left; a refused attempt leaves it as it was.
func testConsumeCode(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	const purpose = domain.CodePasswordReset
	expiry := baseTime.Add(codeTTL)
	tests := []struct {
		name     string
		failures int                              // wrong codes counted before
		hash     []byte                           // nil: the code's
		user     func(t *testing.T) domain.UserID // nil: the code's
		purpose  domain.CodePurpose               // "": the code's
		at       time.Time
		want     bool
	}{
		{name: "RightHash", at: baseTime.Add(time.Minute), want: true},
		{name: "JustBeforeExpiry", at: expiry.Add(-time.Microsecond), want: true},
		{name: "AttemptsLeft", failures: domain.MaxCodeAttempts - 1, at: baseTime, want: true},
		{name: "WrongHash", hash: domain.HashCode("wrong"), at: baseTime},
		{name: "AtExpiry", at: expiry},
		{name: "AfterExpiry", at: expiry.Add(time.Hour)},
		{name: "NoAttemptsLeft", failures: domain.MaxCodeAttempts, at: baseTime},
		{name: "OtherPurpose", purpose: domain.CodeEmailVerification, at: baseTime},
		{name: "OtherUser", user: func(t *testing.T) domain.UserID { return createUser(t, users).ID() }, at: baseTime},
		{name: "UnknownUser", user: func(*testing.T) domain.UserID { return domain.UserID(NewUUID()) }, at: baseTime},
		{name: "NotAUUID", user: func(*testing.T) domain.UserID { return "not-a-uuid" }, at: baseTime},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// A user per case, so that its code is the user's only one.
			u := createUser(t, users)
			c := saveCode(t, codes, u.ID(), purpose)
			countFailures(t, codes, u.ID(), purpose, tt.failures)
			hash, user, p := c.Hash, c.UserID, c.Purpose
			if tt.hash != nil {
				hash = tt.hash
			}
			if tt.user != nil {
				user = tt.user(t)
			}
			if tt.purpose != "" {
				p = tt.purpose
			}
			if got := consume(t, codes, user, p, hash, tt.at); got != tt.want {
				t.Errorf("ConsumeCode = %v, want %v", got, tt.want)
			}
			if tt.want {
				checkNoCode(t, codes, u.ID(), purpose)
				return
			}
			want := c
			want.Attempts = tt.failures
			checkOneTimeCode(t, loadCode(t, codes, u.ID(), purpose), want)
		})
	}
}

func testConsumeCodeTwice(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u := createUser(t, users)
	c := saveCode(t, codes, u.ID(), domain.CodeEmailVerification)
	for i, want := range []bool{true, false} {
		if got := consume(t, codes, u.ID(), domain.CodeEmailVerification, c.Hash, baseTime); got != want {
			t.Errorf("ConsumeCode #%d = %v, want %v", i+1, got, want)
		}
	}
}

// testConsumeCodeConcurrently: of concurrent uses of one code, exactly one
// takes it.
func testConsumeCodeConcurrently(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	const n = 10
	u := createUser(t, users)
	c := saveCode(t, codes, u.ID(), domain.CodePasswordReset)
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		successes int
	)
	for range n {
		wg.Go(func() {
			ok, err := codes.ConsumeCode(context.Background(), u.ID(), domain.CodePasswordReset, c.Hash, baseTime)
			if err != nil {
				t.Errorf("ConsumeCode: %v", err)
			}
			if ok {
				mu.Lock()
				successes++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if successes != 1 {
		t.Errorf("%d of %d concurrent ConsumeCode calls took the code, want 1", successes, n)
	}
	checkNoCode(t, codes, u.ID(), domain.CodePasswordReset)
}

func testCountFailedAttempt(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	c := saveCode(t, codes, u.ID(), domain.CodePasswordReset)
	for i := 1; i <= domain.MaxCodeAttempts+1; i++ {
		if err := codes.CountFailedAttempt(ctx, u.ID(), domain.CodePasswordReset); err != nil {
			t.Fatalf("CountFailedAttempt #%d: %v", i, err)
		}
		if got := loadCode(t, codes, u.ID(), domain.CodePasswordReset).Attempts; got != i {
			t.Errorf("Attempts after %d failures = %d, want %d", i, got, i)
		}
	}
	if consume(t, codes, u.ID(), domain.CodePasswordReset, c.Hash, baseTime) {
		t.Error("ConsumeCode took a code without attempts left")
	}

	// A missing code is not an error, and none is made.
	for _, id := range []domain.UserID{u.ID(), domain.UserID(NewUUID()), "not-a-uuid"} {
		if err := codes.CountFailedAttempt(ctx, id, domain.CodeEmailVerification); err != nil {
			t.Errorf("CountFailedAttempt without a code (user %s): %v", id, err)
		}
		checkNoCode(t, codes, id, domain.CodeEmailVerification)
	}
}

// testEraseUserDeletesCodes: an erased user's codes go with it; other
// users' stay.
func testEraseUserDeletesCodes(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u, other := createUser(t, users), createUser(t, users)
	saveCode(t, codes, u.ID(), domain.CodePasswordReset)
	saveCode(t, codes, u.ID(), domain.CodeEmailVerification)
	kept := saveCode(t, codes, other.ID(), domain.CodePasswordReset)
	eraseUser(t, users, u.ID())

	checkNoCode(t, codes, u.ID(), domain.CodePasswordReset)
	checkNoCode(t, codes, u.ID(), domain.CodeEmailVerification)
	checkOneTimeCode(t, loadCode(t, codes, other.ID(), domain.CodePasswordReset), kept)
}

// testEraseWhileSavingCodes races code requests against erasure: a code is
// either refused or, if it was stored, deleted with the user; it never
// outlives the erasure.
func testEraseWhileSavingCodes(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	const n = 10
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range n {
		u := createUser(t, users)
		_, c := newCode(t, u.ID(), domain.CodePasswordReset)
		wg.Go(func() {
			var saved error
			save := func() { saved = codes.SaveCode(ctx, c) }
			erase := func() {
				if err := users.EraseUser(ctx, u.ID(), baseTime.Add(time.Hour)); err != nil {
					t.Errorf("EraseUser: %v", err)
				}
			}
			together(i, save, erase)
			if saved != nil {
				checkCode(t, "SaveCode racing EraseUser", saved, domain.CodeNotFound)
			}
			checkNoCode(t, codes, u.ID(), domain.CodePasswordReset)
		})
	}
	wg.Wait()
}

func testCodeCanceledContext(t *testing.T, users domain.UserRepository, codes domain.CodeRepository) {
	u := createUser(t, users)
	c := saveCode(t, codes, u.ID(), domain.CodePasswordReset)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()

	_, replacement := newCode(t, u.ID(), domain.CodePasswordReset)
	checkCanceled(t, "SaveCode", codes.SaveCode(ctx, replacement))
	_, err := codes.Code(ctx, u.ID(), domain.CodePasswordReset)
	checkCanceled(t, "Code", err)
	_, err = codes.ConsumeCode(ctx, u.ID(), domain.CodePasswordReset, c.Hash, baseTime)
	checkCanceled(t, "ConsumeCode", err)
	checkCanceled(t, "CountFailedAttempt", codes.CountFailedAttempt(ctx, u.ID(), domain.CodePasswordReset))

	// Nothing changed.
	checkOneTimeCode(t, loadCode(t, codes, u.ID(), domain.CodePasswordReset), c)
}
