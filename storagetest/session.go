package storagetest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
)

// RunSessionRepositoryTests runs the conformance suite of
// domain.SessionRepository. newRepos returns empty repositories, the
// session repository storing sessions for the users of the user
// repository, and the Transactor whose units of work both join; it is
// called once per subtest.
func RunSessionRepositoryTests(t *testing.T, newRepos func(t *testing.T) (domain.UserRepository, domain.SessionRepository, domain.Transactor)) {
	tests := []struct {
		name string
		run  func(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository)
	}{
		{"CreateSession", testCreateSession},
		{"SeveralSessionsPerUser", testSeveralSessionsPerUser},
		{"UnparsableIPAccepted", testUnparsableIPAccepted},
		{"DuplicateSessionID", testDuplicateSessionID},
		{"DuplicateTokenStoresNothing", testDuplicateTokenStoresNothing},
		{"SessionForUnknownUser", testSessionForUnknownUser},
		{"TokenOfAnotherSession", testTokenOfAnotherSession},
		{"Session", testSession},
		{"RefreshToken", testRefreshToken},
		{"RotateRefreshToken", testRotateRefreshToken},
		{"RotateConcurrently", testRotateConcurrently},
		{"RevokeSession", testRevokeSession},
		{"RevokeUserSessions", testRevokeUserSessions},
		{"RevokedSince", testRevokedSince},
		{"Reauthenticate", testReauthenticate},
		{"EraseUserKeepsSessions", testEraseUserKeepsSessions},
		{"SessionForErasedUser", testSessionForErasedUser},
		{"EraseWhileCreatingSessions", testEraseWhileCreatingSessions},
		{"CanceledContext", testSessionCanceledContext},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			users, sessions, _ := newRepos(t)
			tt.run(t, users, sessions)
		})
	}
	t.Run("RotateConflictInTx", func(t *testing.T) {
		t.Parallel()
		users, sessions, tx := newRepos(t)
		testRotateConflictInTx(t, users, sessions, tx)
	})
}

var webClient = domain.Client{ID: "web", IP: "203.0.113.7", UserAgent: "Mozilla/5.0 (X11; Linux x86_64)"}

// newSession returns a session of thirty days for userID and its first
// refresh token, valid for a day.
func newSession(tb testing.TB, userID domain.UserID, client domain.Client) (*domain.Session, domain.RefreshToken) {
	tb.Helper()
	return newSessionFor(tb, userID, client, 30*24*time.Hour)
}

// newSessionFor returns a session opened at baseTime that lasts ttl, and
// its first refresh token, valid for a day or until the session ends.
func newSessionFor(tb testing.TB, userID domain.UserID, client domain.Client, ttl time.Duration) (*domain.Session, domain.RefreshToken) {
	tb.Helper()
	s, err := domain.NewSession(domain.SessionID(NewUUID()), userID, client, baseTime, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return s, nextToken(tb, s, baseTime)
}

// nextToken returns a new refresh token of s created at now and valid for a
// day or until the session ends.
func nextToken(tb testing.TB, s *domain.Session, now time.Time) domain.RefreshToken {
	tb.Helper()
	_, tok, err := domain.NewRefreshToken(rand.Reader, s, now, 24*time.Hour)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// createSession stores a new session of thirty days for the user and
// returns it with its first refresh token.
func createSession(tb testing.TB, sessions domain.SessionRepository, userID domain.UserID) (*domain.Session, domain.RefreshToken) {
	tb.Helper()
	return createSessionFor(tb, sessions, userID, 30*24*time.Hour)
}

// createSessionFor stores a new session opened at baseTime that lasts ttl.
func createSessionFor(tb testing.TB, sessions domain.SessionRepository, userID domain.UserID, ttl time.Duration) (*domain.Session, domain.RefreshToken) {
	tb.Helper()
	s, tok := newSessionFor(tb, userID, webClient, ttl)
	if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
		tb.Fatalf("CreateSession: %v", err)
	}
	return s, tok
}

// loadSession returns the stored session with the id.
func loadSession(tb testing.TB, sessions domain.SessionRepository, id domain.SessionID) *domain.Session {
	tb.Helper()
	s, err := sessions.Session(context.Background(), id)
	if err != nil {
		tb.Fatalf("Session(%s): %v", id, err)
	}
	return s
}

// loadToken returns the stored refresh token with the hash and its session.
func loadToken(tb testing.TB, sessions domain.SessionRepository, hash []byte) (domain.RefreshToken, *domain.Session) {
	tb.Helper()
	tok, s, err := sessions.RefreshToken(context.Background(), hash)
	if err != nil {
		tb.Fatalf("RefreshToken(%x): %v", hash, err)
	}
	return tok, s
}

// rotate rotates the token with the hash to next.
func rotate(tb testing.TB, sessions domain.SessionRepository, hash []byte, next domain.RefreshToken) {
	tb.Helper()
	if err := sessions.RotateRefreshToken(context.Background(), hash, next); err != nil {
		tb.Fatalf("RotateRefreshToken: %v", err)
	}
}

// checkSession reports an error unless got is want as stored.
func checkSession(tb testing.TB, got *domain.Session, want domain.SessionSnapshot) {
	tb.Helper()
	g := got.Snapshot()
	if g.ID != want.ID || g.UserID != want.UserID || g.ClientID != want.ClientID || g.IP != want.IP || g.UserAgent != want.UserAgent {
		tb.Errorf("session = %s, want %s", describe(g), describe(want))
	}
	checkTime(tb, "session CreatedAt", g.CreatedAt, want.CreatedAt)
	checkTime(tb, "session ExpiresAt", g.ExpiresAt, want.ExpiresAt)
	checkTime(tb, "session RevokedAt", g.RevokedAt, want.RevokedAt)
}

// checkToken reports an error unless got is want as stored.
func checkToken(tb testing.TB, got, want domain.RefreshToken) {
	tb.Helper()
	if !bytes.Equal(got.Hash, want.Hash) || got.SessionID != want.SessionID {
		tb.Errorf("token = %x of session %s, want %x of session %s", got.Hash, got.SessionID, want.Hash, want.SessionID)
	}
	checkTime(tb, "token CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(tb, "token ExpiresAt", got.ExpiresAt, want.ExpiresAt)
	checkTime(tb, "token UsedAt", got.UsedAt, want.UsedAt)
}

// checkIDs reports an error unless got holds the ids of want, in any order.
func checkIDs(tb testing.TB, what string, got, want []domain.SessionID) {
	tb.Helper()
	got, want = slices.Sorted(slices.Values(got)), slices.Sorted(slices.Values(want))
	if !slices.Equal(got, want) {
		tb.Errorf("%s = %v, want %v (in any order)", what, got, want)
	}
}

func testCreateSession(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
}

func testSeveralSessionsPerUser(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	for range 3 {
		s, tok := newSession(t, u.ID(), webClient)
		if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
			t.Fatalf("CreateSession: %v", err)
		}
	}
}

// testUnparsableIPAccepted: the address is what the requesting service
// reported; storing it must never fail a login.
func testUnparsableIPAccepted(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	for _, c := range []domain.Client{
		{ID: "web", IP: "not an address", UserAgent: "curl/8.5.0"},
		{ID: "web", IP: "2001:db8::1%eth0"},
		{ID: "cli"},
	} {
		s, tok := newSession(t, u.ID(), c)
		if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
			t.Errorf("CreateSession with client %+v: %v", c, err)
		}
	}
}

func testDuplicateSessionID(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s, tok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	_, another, err := domain.NewRefreshToken(rand.Reader, s, baseTime, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	checkCode(t, "CreateSession with a taken id", sessions.CreateSession(ctx, s, another), domain.CodeConflict)
}

// testDuplicateTokenStoresNothing checks atomicity: when the token cannot
// be stored, neither is the session.
func testDuplicateTokenStoresNothing(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	s1, tok1 := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s1, tok1); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	s2, tok2 := newSession(t, u.ID(), webClient)
	clash := tok2
	clash.Hash = tok1.Hash
	checkCode(t, "CreateSession with a taken token hash", sessions.CreateSession(ctx, s2, clash), domain.CodeConflict)
	if err := sessions.CreateSession(ctx, s2, tok2); err != nil {
		t.Errorf("CreateSession after a failed attempt: %v (the failed attempt stored the session)", err)
	}
}

// testSessionForUnknownUser: a user deleted between login's lookup and
// the session's creation is not found.
func testSessionForUnknownUser(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	createUser(t, users) // a store that is not empty
	for _, id := range []domain.UserID{domain.UserID(NewUUID()), "not-a-uuid"} {
		s, tok := newSession(t, id, webClient)
		checkCode(t, "CreateSession for user "+string(id), sessions.CreateSession(ctx, s, tok), domain.CodeNotFound)
	}
}

func testTokenOfAnotherSession(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	s1, _ := newSession(t, u.ID(), webClient)
	_, tok2 := newSession(t, u.ID(), webClient)
	checkCode(t, "CreateSession with another session's token", sessions.CreateSession(context.Background(), s1, tok2), domain.CodeInternal)
}

func testSessionCanceledContext(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s, tok); !errors.Is(err, context.Canceled) {
		t.Errorf("CreateSession error = %v, want context.Canceled in the chain", err)
	}
	if err := sessions.CreateSession(context.Background(), s, tok); err != nil {
		t.Errorf("CreateSession after a cancelled attempt: %v", err)
	}

	_, _, err := sessions.RefreshToken(ctx, tok.Hash)
	checkCanceled(t, "RefreshToken", err)
	next := nextToken(t, s, baseTime.Add(time.Hour))
	checkCanceled(t, "RotateRefreshToken", sessions.RotateRefreshToken(ctx, tok.Hash, next))
	_, err = sessions.Session(ctx, s.ID())
	checkCanceled(t, "Session", err)
	_, err = sessions.RevokeSession(ctx, s.ID(), domain.RevokedByLogout, baseTime.Add(time.Hour))
	checkCanceled(t, "RevokeSession", err)
	_, err = sessions.RevokeUserSessions(ctx, u.ID(), "", domain.RevokedByLogoutAll, baseTime.Add(time.Hour))
	checkCanceled(t, "RevokeUserSessions", err)
	_, err = sessions.RevokedSince(ctx, baseTime)
	checkCanceled(t, "RevokedSince", err)

	// Nothing changed.
	got, _ := loadToken(t, sessions, tok.Hash)
	checkToken(t, got, tok)
	_, _, err = sessions.RefreshToken(context.Background(), next.Hash)
	checkCode(t, "RefreshToken of the successor of a cancelled rotation", err, domain.CodeNotFound)
	checkSession(t, loadSession(t, sessions, s.ID()), s.Snapshot())
}

// testSession: a stored session reads back as written, revoked or not.
func testSession(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	live, _ := createSession(t, sessions, u.ID())
	bare, bareTok := newSession(t, u.ID(), domain.Client{ID: "cli"}) // no address, no user agent
	if err := sessions.CreateSession(ctx, bare, bareTok); err != nil {
		t.Fatalf("CreateSession: %v", err)
	}
	revoked, _ := createSession(t, sessions, u.ID())
	revokedAt := baseTime.Add(time.Hour + 3*time.Nanosecond)
	if _, err := sessions.RevokeSession(ctx, revoked.ID(), domain.RevokedByLogout, revokedAt); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	wantRevoked := revoked.Snapshot()
	wantRevoked.RevokedAt = revokedAt

	tests := []struct {
		name string
		id   domain.SessionID
		want *domain.SessionSnapshot // nil: not found
	}{
		{"Live", live.ID(), new(live.Snapshot())},
		{"WithoutClientDetails", bare.ID(), new(bare.Snapshot())},
		{"Revoked", revoked.ID(), &wantRevoked},
		{"NotFound", domain.SessionID(NewUUID()), nil},
		{"NotAUUID", "not-a-uuid", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := sessions.Session(ctx, tt.id)
			if tt.want == nil {
				checkCode(t, "Session("+string(tt.id)+")", err, domain.CodeNotFound)
				return
			}
			if err != nil {
				t.Fatalf("Session: %v", err)
			}
			checkSession(t, got, *tt.want)
		})
	}
}

// testRefreshToken: a token reads back with its session, used or not, the
// session revoked or not; RefreshGrant reads the same with the session's
// user, none when the account is erased.
func testRefreshToken(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)

	s, first := createSession(t, sessions, u.ID())
	next := nextToken(t, s, baseTime.Add(time.Hour+5*time.Nanosecond))
	rotate(t, sessions, first.Hash, next)
	used := first
	used.UsedAt = next.CreatedAt

	revoked, revokedTok := createSession(t, sessions, u.ID())
	revokedAt := baseTime.Add(2 * time.Hour)
	if _, err := sessions.RevokeSession(ctx, revoked.ID(), domain.RevokedByLogout, revokedAt); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	revokedSnap := revoked.Snapshot()
	revokedSnap.RevokedAt = revokedAt
	owner, err := users.UserByID(ctx, u.ID())
	if err != nil {
		t.Fatalf("UserByID: %v", err)
	}
	gone := createUser(t, users)
	orphan, orphanTok := createSession(t, sessions, gone.ID())
	eraseUser(t, users, gone.ID())
	orphanSnap := orphan.Snapshot()
	orphanSnap.IP, orphanSnap.UserAgent = "", "" // erased with the account

	tests := []struct {
		name        string
		hash        []byte
		wantToken   domain.RefreshToken
		wantSession domain.SessionSnapshot
		wantUser    *domain.User
		wantCode    domain.Code
	}{
		{"Unused", next.Hash, next, s.Snapshot(), owner, ""},
		{"Used", first.Hash, used, s.Snapshot(), owner, ""},
		{"OfRevokedSession", revokedTok.Hash, revokedTok, revokedSnap, owner, ""},
		{"OfErasedUser", orphanTok.Hash, orphanTok, orphanSnap, nil, ""},
		{"NotFound", randomBytes(32), domain.RefreshToken{}, domain.SessionSnapshot{}, nil, domain.CodeNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, got, err := sessions.RefreshToken(ctx, tt.hash)
			if tt.wantCode != "" {
				checkCode(t, "RefreshToken", err, tt.wantCode)
				return
			}
			if err != nil {
				t.Fatalf("RefreshToken: %v", err)
			}
			checkToken(t, tok, tt.wantToken)
			checkSession(t, got, tt.wantSession)

			g, err := sessions.RefreshGrant(ctx, tt.hash)
			if err != nil {
				t.Fatalf("RefreshGrant: %v", err)
			}
			checkToken(t, g.Token, tt.wantToken)
			checkSession(t, g.Session, tt.wantSession)
			switch {
			case tt.wantUser == nil && g.User != nil:
				t.Errorf("RefreshGrant user %s, want none: the account is erased", g.User.ID())
			case tt.wantUser != nil && (g.User == nil || !reflect.DeepEqual(g.User.Snapshot(), tt.wantUser.Snapshot())):
				t.Errorf("RefreshGrant user %+v, want %+v", g.User, tt.wantUser.Snapshot())
			}
		})
	}
	t.Run("GrantNotFound", func(t *testing.T) {
		_, err := sessions.RefreshGrant(ctx, randomBytes(32))
		checkCode(t, "RefreshGrant", err, domain.CodeNotFound)
	})
}

// testRotateRefreshToken: a rotation marks the token used at its
// successor's creation and stores the successor; a refused one changes
// nothing.
func testRotateRefreshToken(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	u := createUser(t, users)
	// at returns a successor of a new session's first token created d after
	// it; the first token is valid for a day.
	at := func(t *testing.T, d time.Duration) ([]byte, domain.RefreshToken) {
		s, first := createSession(t, sessions, u.ID())
		return first.Hash, nextToken(t, s, baseTime.Add(d))
	}
	tests := []struct {
		name     string
		prepare  func(t *testing.T) (hash []byte, next domain.RefreshToken)
		wantCode domain.Code
	}{
		{"OK", func(t *testing.T) ([]byte, domain.RefreshToken) { return at(t, time.Hour+7*time.Nanosecond) }, ""},
		{"JustBeforeExpiry", func(t *testing.T) ([]byte, domain.RefreshToken) { return at(t, 24*time.Hour-time.Microsecond) }, ""},
		{"AtExpiry", func(t *testing.T) ([]byte, domain.RefreshToken) { return at(t, 24*time.Hour) }, domain.CodeConflict},
		{"AfterExpiry", func(t *testing.T) ([]byte, domain.RefreshToken) { return at(t, 25*time.Hour) }, domain.CodeConflict},
		{"Used", func(t *testing.T) ([]byte, domain.RefreshToken) {
			s, first := createSession(t, sessions, u.ID())
			rotate(t, sessions, first.Hash, nextToken(t, s, baseTime.Add(time.Hour)))
			return first.Hash, nextToken(t, s, baseTime.Add(2*time.Hour))
		}, domain.CodeConflict},
		{"SuccessorHashTaken", func(t *testing.T) ([]byte, domain.RefreshToken) {
			_, other := createSession(t, sessions, u.ID())
			hash, next := at(t, time.Hour)
			next.Hash = other.Hash
			return hash, next
		}, domain.CodeConflict},
		{"NotFound", func(t *testing.T) ([]byte, domain.RefreshToken) {
			s, _ := createSession(t, sessions, u.ID())
			return randomBytes(32), nextToken(t, s, baseTime.Add(time.Hour))
		}, domain.CodeNotFound},
		{"SuccessorOfAnotherSession", func(t *testing.T) ([]byte, domain.RefreshToken) {
			other, _ := createSession(t, sessions, u.ID())
			hash, _ := at(t, time.Hour)
			return hash, nextToken(t, other, baseTime.Add(time.Hour))
		}, domain.CodeInternal},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			hash, next := tt.prepare(t)
			oldBefore, _, oldErr := sessions.RefreshToken(ctx, hash)
			nextBefore, _, nextErr := sessions.RefreshToken(ctx, next.Hash)

			err := sessions.RotateRefreshToken(ctx, hash, next)
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("RotateRefreshToken: %v", err)
				}
				want := oldBefore
				want.UsedAt = next.CreatedAt
				got, _ := loadToken(t, sessions, hash)
				checkToken(t, got, want)
				got, s := loadToken(t, sessions, next.Hash)
				checkToken(t, got, next)
				if s.ID() != next.SessionID {
					t.Errorf("successor's session = %s, want %s", s.ID(), next.SessionID)
				}
				return
			}
			checkCode(t, "RotateRefreshToken", err, tt.wantCode)
			// Nothing changed: both hashes read as before.
			for _, h := range []struct {
				what   string
				hash   []byte
				before domain.RefreshToken
				err    error
			}{{"token", hash, oldBefore, oldErr}, {"successor's hash", next.Hash, nextBefore, nextErr}} {
				got, _, err := sessions.RefreshToken(ctx, h.hash)
				if domain.ErrorCode(err) != domain.ErrorCode(h.err) {
					t.Errorf("RefreshToken of the %s after a refused rotation: error %v, want %v", h.what, err, h.err)
					continue
				}
				if err == nil {
					checkToken(t, got, h.before)
				}
			}
		})
	}
}

// testRotateConcurrently: of concurrent rotations of one token, exactly
// one succeeds and only its successor is stored.
func testRotateConcurrently(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	const n = 20
	ctx := context.Background()
	u := createUser(t, users)
	s, first := createSession(t, sessions, u.ID())
	nexts := make([]domain.RefreshToken, n)
	for i := range nexts {
		nexts[i] = nextToken(t, s, baseTime.Add(time.Duration(i+1)*time.Minute))
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { errs[i] = sessions.RotateRefreshToken(ctx, first.Hash, nexts[i]) })
	}
	wg.Wait()

	winner := -1
	for i, err := range errs {
		switch {
		case err == nil && winner >= 0:
			t.Errorf("rotations %d and %d both succeeded", winner, i)
		case err == nil:
			winner = i
		default:
			checkCode(t, "a losing concurrent rotation", err, domain.CodeConflict)
		}
	}
	if winner < 0 {
		t.Fatalf("none of %d concurrent rotations succeeded", n)
	}
	stored := 0
	for _, next := range nexts {
		if _, _, err := sessions.RefreshToken(ctx, next.Hash); err == nil {
			stored++
		} else {
			checkCode(t, "RefreshToken of a losing successor", err, domain.CodeNotFound)
		}
	}
	if stored != 1 {
		t.Errorf("%d successors stored after %d concurrent rotations, want 1", stored, n)
	}
	got, _ := loadToken(t, sessions, first.Hash)
	want := first
	want.UsedAt = nexts[winner].CreatedAt
	checkToken(t, got, want)
}

// testRotateConflictInTx: a refused rotation inside a unit of work leaves
// it usable, so a use case may go on (say, revoke the session on reuse)
// and commit.
func testRotateConflictInTx(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository, tx domain.Transactor) {
	ctx := context.Background()
	u := createUser(t, users)
	s, first := createSession(t, sessions, u.ID())
	second := nextToken(t, s, baseTime.Add(time.Hour))
	rotate(t, sessions, first.Hash, second)
	third := nextToken(t, s, baseTime.Add(2*time.Hour))
	revokedAt := baseTime.Add(3 * time.Hour)

	err := tx.InTx(ctx, func(ctx context.Context) error {
		err := sessions.RotateRefreshToken(ctx, first.Hash, nextToken(t, s, baseTime.Add(2*time.Hour)))
		checkCode(t, "RotateRefreshToken of a used token in a transaction", err, domain.CodeConflict)
		clash := nextToken(t, s, baseTime.Add(2*time.Hour))
		clash.Hash = first.Hash
		err = sessions.RotateRefreshToken(ctx, second.Hash, clash)
		checkCode(t, "RotateRefreshToken to a taken hash in a transaction", err, domain.CodeConflict)
		if err := sessions.RotateRefreshToken(ctx, second.Hash, third); err != nil {
			return err
		}
		_, err = sessions.RevokeSession(ctx, s.ID(), domain.RevokedByReuse, revokedAt)
		return err
	})
	if err != nil {
		t.Fatalf("InTx after refused rotations: %v", err)
	}
	got, _ := loadToken(t, sessions, second.Hash)
	want := second
	want.UsedAt = third.CreatedAt
	checkToken(t, got, want)
	got, _ = loadToken(t, sessions, third.Hash)
	checkToken(t, got, third)
	checkTime(t, "RevokedAt", loadSession(t, sessions, s.ID()).Snapshot().RevokedAt, revokedAt)
}

func testRevokeSession(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	s, _ := createSession(t, sessions, u.ID())
	other, _ := createSession(t, sessions, u.ID())
	first, second := baseTime.Add(time.Hour+9*time.Nanosecond), baseTime.Add(2*time.Hour)

	for _, tt := range []struct {
		name string
		at   time.Time
		want bool
	}{{"First", first, true}, {"Again", second, false}} {
		got, err := sessions.RevokeSession(ctx, s.ID(), domain.RevokedByLogout, tt.at)
		if err != nil {
			t.Fatalf("RevokeSession (%s): %v", tt.name, err)
		}
		if got != tt.want {
			t.Errorf("RevokeSession (%s) = %v, want %v", tt.name, got, tt.want)
		}
		// The first revocation's time stays.
		checkTime(t, "RevokedAt after RevokeSession ("+tt.name+")", loadSession(t, sessions, s.ID()).Snapshot().RevokedAt, first)
	}
	if loadSession(t, sessions, other.ID()).Revoked() {
		t.Error("RevokeSession revoked another session of the user")
	}
	for _, id := range []domain.SessionID{domain.SessionID(NewUUID()), "not-a-uuid"} {
		_, err := sessions.RevokeSession(ctx, id, domain.RevokedByLogout, first)
		checkCode(t, "RevokeSession("+string(id)+")", err, domain.CodeNotFound)
	}
}

// testRevokeUserSessions: all of a user's sessions end but the one named,
// those revoked or long expired already aside; other users' stay.
func testRevokeUserSessions(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u, other := createUser(t, users), createUser(t, users)
	now := baseTime.Add(10*24*time.Hour + 17*time.Nanosecond)
	earlier := baseTime.Add(time.Hour)

	current, _ := createSession(t, sessions, u.ID())
	live1, _ := createSession(t, sessions, u.ID())
	live2, _ := createSession(t, sessions, u.ID())
	expiredRecently, _ := createSessionFor(t, sessions, u.ID(), 10*24*time.Hour-time.Hour) // an hour before now
	expiredLongAgo, _ := createSessionFor(t, sessions, u.ID(), 8*24*time.Hour)             // two days before now
	revoked, _ := createSession(t, sessions, u.ID())
	if _, err := sessions.RevokeSession(ctx, revoked.ID(), domain.RevokedByLogout, earlier); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	othersSession, _ := createSession(t, sessions, other.ID())

	got, err := sessions.RevokeUserSessions(ctx, u.ID(), current.ID(), domain.RevokedByPasswordChange, now)
	if err != nil {
		t.Fatalf("RevokeUserSessions: %v", err)
	}
	checkIDs(t, "RevokeUserSessions", got, []domain.SessionID{live1.ID(), live2.ID(), expiredRecently.ID()})
	for _, c := range []struct {
		name string
		id   domain.SessionID
		want time.Time // RevokedAt; zero: not revoked
	}{
		{"current", current.ID(), time.Time{}},
		{"live1", live1.ID(), now},
		{"live2", live2.ID(), now},
		{"expiredRecently", expiredRecently.ID(), now},
		{"expiredLongAgo", expiredLongAgo.ID(), time.Time{}},
		{"revoked", revoked.ID(), earlier},
		{"othersSession", othersSession.ID(), time.Time{}},
	} {
		checkTime(t, c.name+" RevokedAt", loadSession(t, sessions, c.id).Snapshot().RevokedAt, c.want)
	}

	got, err = sessions.RevokeUserSessions(ctx, u.ID(), current.ID(), domain.RevokedByPasswordChange, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("RevokeUserSessions again: %v", err)
	}
	checkIDs(t, "RevokeUserSessions again", got, nil)

	got, err = sessions.RevokeUserSessions(ctx, u.ID(), "", domain.RevokedByLogoutAll, now.Add(time.Minute))
	if err != nil {
		t.Fatalf("RevokeUserSessions without exception: %v", err)
	}
	checkIDs(t, "RevokeUserSessions without exception", got, []domain.SessionID{current.ID()})

	for _, id := range []domain.UserID{domain.UserID(NewUUID()), "not-a-uuid"} {
		got, err := sessions.RevokeUserSessions(ctx, id, "", domain.RevokedByLogoutAll, now)
		if err != nil {
			t.Errorf("RevokeUserSessions(%s): %v", id, err)
		}
		checkIDs(t, "RevokeUserSessions("+string(id)+")", got, nil)
	}
	if loadSession(t, sessions, othersSession.ID()).Revoked() {
		t.Error("RevokeUserSessions revoked another user's session")
	}
}

// testRevokedSince: only sessions revoked at or after the time count.
func testRevokedSince(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	since := baseTime.Add(time.Hour) // with nanoseconds
	revokeAt := func(at time.Time) domain.SessionID {
		s, _ := createSession(t, sessions, u.ID())
		if _, err := sessions.RevokeSession(ctx, s.ID(), domain.RevokedByLogout, at); err != nil {
			t.Fatalf("RevokeSession: %v", err)
		}
		return s.ID()
	}
	revokeAt(since.Add(-time.Microsecond))
	revokeAt(since.Add(-time.Hour))
	atSince := revokeAt(since)
	after := revokeAt(since.Add(time.Minute))
	createSession(t, sessions, u.ID()) // never revoked

	got, err := sessions.RevokedSince(ctx, since)
	if err != nil {
		t.Fatalf("RevokedSince: %v", err)
	}
	checkIDs(t, "RevokedSince", got, []domain.SessionID{atSince, after})

	got, err = sessions.RevokedSince(ctx, since.Add(time.Hour))
	if err != nil {
		t.Fatalf("RevokedSince later: %v", err)
	}
	checkIDs(t, "RevokedSince later", got, nil)
}

// testEraseUserKeepsSessions: an erased user's sessions stay, revoked or
// not as they were, so that their revocation still counts, but without
// the address and user agent, which are personal data.
func testEraseUserKeepsSessions(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u, other := createUser(t, users), createUser(t, users)
	live, liveTok := createSession(t, sessions, u.ID())
	revoked, _ := createSession(t, sessions, u.ID())
	revokedAt := baseTime.Add(time.Hour)
	if _, err := sessions.RevokeSession(ctx, revoked.ID(), domain.RevokedByAccountDeleted, revokedAt); err != nil {
		t.Fatalf("RevokeSession: %v", err)
	}
	othersSession, _ := createSession(t, sessions, other.ID())
	eraseUser(t, users, u.ID())

	wantLive, wantRevoked := live.Snapshot(), revoked.Snapshot()
	wantLive.IP, wantLive.UserAgent = "", ""
	wantRevoked.IP, wantRevoked.UserAgent, wantRevoked.RevokedAt = "", "", revokedAt
	checkSession(t, loadSession(t, sessions, live.ID()), wantLive)
	checkSession(t, loadSession(t, sessions, revoked.ID()), wantRevoked)
	checkSession(t, loadSession(t, sessions, othersSession.ID()), othersSession.Snapshot())
	_, s := loadToken(t, sessions, liveTok.Hash)
	checkSession(t, s, wantLive)
}

// testSessionForErasedUser: an erased user, like a deleted one, gets no
// new session, which would store its address and user agent again.
func testSessionForErasedUser(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	eraseUser(t, users, u.ID())
	s, tok := newSession(t, u.ID(), webClient)
	checkCode(t, "CreateSession for an erased user", sessions.CreateSession(ctx, s, tok), domain.CodeNotFound)
	_, err := sessions.Session(ctx, s.ID())
	checkCode(t, "Session after a refused CreateSession", err, domain.CodeNotFound)
	_, _, err = sessions.RefreshToken(ctx, tok.Hash)
	checkCode(t, "RefreshToken after a refused CreateSession", err, domain.CodeNotFound)
}

// testEraseWhileCreatingSessions races logins against erasure: a session
// is either refused or, if it was stored, left without the address and
// user agent; never stored with them after the user is erased.
func testEraseWhileCreatingSessions(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	const n = 10
	ctx := context.Background()
	var wg sync.WaitGroup
	for i := range n {
		u := createUser(t, users)
		s, tok := newSession(t, u.ID(), webClient)
		wg.Go(func() {
			var created error
			create := func() { created = sessions.CreateSession(ctx, s, tok) }
			erase := func() {
				if err := users.EraseUser(ctx, u.ID(), baseTime.Add(time.Hour)); err != nil {
					t.Errorf("EraseUser: %v", err)
				}
			}
			together(i, create, erase)
			if created != nil {
				checkCode(t, "CreateSession racing EraseUser", created, domain.CodeNotFound)
				return
			}
			got, err := sessions.Session(ctx, s.ID())
			if err != nil {
				t.Errorf("Session: %v", err)
				return
			}
			if snap := got.Snapshot(); snap.IP != "" || snap.UserAgent != "" {
				t.Errorf("session stored during erasure kept IP %q and user agent %q, want both empty", snap.IP, snap.UserAgent)
			}
		})
	}
	wg.Wait()
}

// testReauthenticate: a session's authentication time round-trips, and
// Reauthenticate moves it (a password change made through the session).
func testReauthenticate(t *testing.T, users domain.UserRepository, sessions domain.SessionRepository) {
	ctx := context.Background()
	u := createUser(t, users)
	s, tok := newSession(t, u.ID(), webClient)
	if err := sessions.CreateSession(ctx, s, tok); err != nil {
		t.Fatal(err)
	}
	got, err := sessions.Session(ctx, s.ID())
	if err != nil {
		t.Fatal(err)
	}
	checkTime(t, "AuthenticatedAt", got.AuthenticatedAt(), s.AuthenticatedAt())
	later := baseTime.Add(time.Hour)
	if err := sessions.Reauthenticate(ctx, s.ID(), later); err != nil {
		t.Fatal(err)
	}
	if got, err = sessions.Session(ctx, s.ID()); err != nil {
		t.Fatal(err)
	}
	checkTime(t, "AuthenticatedAt after Reauthenticate", got.AuthenticatedAt(), later)
	checkCode(t, "Reauthenticate an unknown session", sessions.Reauthenticate(ctx, domain.SessionID(NewUUID()), later), domain.CodeNotFound)
}
