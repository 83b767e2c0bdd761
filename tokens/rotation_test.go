package tokens_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

// manualClock is a clock the test moves.
type manualClock struct {
	mu  sync.Mutex
	now time.Time
}

func newManualClock() *manualClock {
	return &manualClock{now: time.Date(2026, 11, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *manualClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *manualClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = t
}

// rotationConfig is a short policy: a key signs for ten hours, is
// published an hour before, and stays published 16 minutes after (the
// 15-minute tokens plus the clock skew). Its keys are EdDSA.
func rotationConfig(clock *manualClock) tokens.Config {
	return tokens.Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, AccessTTL: 15 * time.Minute, Algorithm: tokens.EdDSA,
		KeyEncryptionKey: kek, RotationPeriod: 10 * time.Hour, PrePublish: time.Hour, Now: clock.Now,
	}
}

func startIssuer(t *testing.T, store domain.SigningKeyRepository, cfg tokens.Config) *tokens.Issuer {
	t.Helper()
	i, err := tokens.NewIssuer(context.Background(), store, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

// kidOf returns the kid header of a token.
func kidOf(t *testing.T, token string) string {
	t.Helper()
	kid, _ := decodeSegment(t, token, 0)["kid"].(string)
	return kid
}

func issue(t *testing.T, i *tokens.Issuer) string {
	t.Helper()
	tok, err := i.IssueAccessToken(context.Background(), claims)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Token
}

// storedStates returns kid → state of every stored key published at now.
func storedStates(t *testing.T, store domain.SigningKeyRepository, now time.Time) map[string]domain.KeyState {
	t.Helper()
	keys, err := store.SigningKeys(context.Background(), now)
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]domain.KeyState{}
	for _, k := range keys {
		states[k.ID] = k.State(now)
	}
	return states
}

// TestRotationFollowsThePolicy walks one key's life: it signs; its
// successor is published two pre-publication windows before its end and
// signs from that end, without a reload; the old key's tokens verify until
// they expire, and the key leaves the JWKS once they have.
func TestRotationFollowsThePolicy(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	i := startIssuer(t, store, rotationConfig(clock))

	first := kidOf(t, issue(t, i))
	if got := publishedKids(t, i.JWKS()); !slices.Equal(got, []string{first}) {
		t.Fatalf("JWKS kids = %v, want the first key only", got)
	}

	clock.Set(t0.Add(8*time.Hour - time.Second)) // not yet due
	if err := i.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(publishedKids(t, i.JWKS())); n != 1 {
		t.Fatalf("%d keys published before the successor was due, want 1", n)
	}

	clock.Set(t0.Add(8 * time.Hour)) // two windows before the end
	if err := i.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	kids := publishedKids(t, i.JWKS())
	if len(kids) != 2 {
		t.Fatalf("JWKS kids = %v, want the first key and its successor", kids)
	}
	second := kids[1]
	if st := storedStates(t, store, clock.Now()); st[first] != domain.KeyCurrent || st[second] != domain.KeyNext {
		t.Errorf("states = %v, want the first current and the second next", st)
	}
	if kid := kidOf(t, issue(t, i)); kid != first {
		t.Errorf("signed with %s before the successor's start, want the first key", kid)
	}

	clock.Set(t0.Add(10*time.Hour - time.Second))
	lastOfFirst := issue(t, i)
	clock.Set(t0.Add(10 * time.Hour)) // no Maintain: the schedule is loaded
	if kid := kidOf(t, issue(t, i)); kid != second {
		t.Errorf("signed with %s at the successor's start, want the successor", kid)
	}
	clock.Set(t0.Add(10*time.Hour + 15*time.Minute - 2*time.Second))
	if _, err := i.VerifyAccessToken(lastOfFirst); err != nil {
		t.Errorf("the retired key's last token was refused before it expired: %v", err)
	}

	clock.Set(t0.Add(10*time.Hour + 16*time.Minute)) // retention over
	if err := i.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if got := publishedKids(t, i.JWKS()); !slices.Equal(got, []string{second}) {
		t.Errorf("JWKS kids = %v once the first key's tokens expired, want the successor only", got)
	}
	if _, err := i.VerifyAccessToken(lastOfFirst); err == nil {
		t.Error("a token of the removed key verified")
	}
}

// TestWorkersSignWithOneKey: workers that start together create one key,
// and two workers on one store switch to the successor at the same
// instant, whichever of them created it.
func TestWorkersSignWithOneKey(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	a, b := startIssuer(t, store, rotationConfig(clock)), startIssuer(t, store, rotationConfig(clock))
	if ka, kb := kidOf(t, issue(t, a)), kidOf(t, issue(t, b)); ka != kb {
		t.Fatalf("workers sign with %s and %s, want one key", ka, kb)
	}

	clock.Set(t0.Add(8*time.Hour + time.Minute))
	for _, i := range []*tokens.Issuer{a, b} { // both maintain; one creates
		if err := i.Maintain(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if n := len(storedStates(t, store, clock.Now())); n != 2 {
		t.Fatalf("%d keys stored after both workers maintained, want 2", n)
	}
	clock.Set(t0.Add(10 * time.Hour))
	if ka, kb := kidOf(t, issue(t, a)), kidOf(t, issue(t, b)); ka != kb {
		t.Errorf("after the switch the workers sign with %s and %s, want one key", ka, kb)
	}
}

// TestLateWorkersKeepSigning: when no worker ran past the current key's
// end, the key signs on until its successor, published now, takes over
// after the pre-publication window: tokens never carry a kid verifiers
// could not have fetched, and signing never stops.
func TestLateWorkersKeepSigning(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	i := startIssuer(t, store, rotationConfig(clock))
	first := kidOf(t, issue(t, i))

	late := t0.Add(10*time.Hour + 5*time.Minute) // past the end, within the retention
	clock.Set(late)
	if kid := kidOf(t, issue(t, i)); kid != first {
		t.Errorf("before maintaining, signed with %s, want the first key still", kid)
	}
	if err := i.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if kid := kidOf(t, issue(t, i)); kid != first {
		t.Errorf("signed with %s as soon as the successor was published, want the first key until it signs", kid)
	}
	clock.Set(late.Add(time.Hour))
	if kid := kidOf(t, issue(t, i)); kid == first {
		t.Error("the first key still signs after its successor's pre-publication")
	}
}

// TestAlgorithmChangeGoesThroughNext: a worker configured for another
// algorithm publishes that algorithm's key first and signs with the
// current key of the old one meanwhile, so no verifier meets an unknown
// kid.
func TestAlgorithmChangeGoesThroughNext(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	ed := startIssuer(t, store, rotationConfig(clock))
	edKid := kidOf(t, issue(t, ed))

	cfg := rotationConfig(clock)
	cfg.Algorithm = tokens.ES256
	es := startIssuer(t, store, cfg)
	if kid := kidOf(t, issue(t, es)); kid != edKid {
		t.Errorf("the ES256 worker signed with %s before its key's pre-publication ended, want the EdDSA key", kid)
	}
	if err := ed.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(publishedKids(t, ed.JWKS())); n != 2 {
		t.Errorf("the EdDSA worker publishes %d keys, want both algorithms'", n)
	}
	clock.Set(t0.Add(time.Hour))
	tok := issue(t, es)
	if alg := decodeSegment(t, tok, 0)["alg"]; alg != tokens.ES256 {
		t.Errorf("after the pre-publication the ES256 worker signs with %v, want ES256", alg)
	}
	if _, err := ed.VerifyAccessToken(tok); err != nil {
		t.Errorf("the EdDSA worker refuses the ES256 worker's token: %v", err)
	}
}

// TestScheduleEditedInTheStoreIsNotTrusted: each row's schedule is
// authenticated with its private half, so one who can write to the store
// but lacks the key-encryption key cannot keep a retired key signing or
// published, nor pass a current row off as one of an earlier version.
func TestScheduleEditedInTheStoreIsNotTrusted(t *testing.T) {
	tests := []struct {
		name string
		edit func(k *domain.SigningKey)
	}{
		{"SignsLonger", func(k *domain.SigningKey) { k.SignUntil = k.SignUntil.Add(time.Hour) }},
		{"PublishedLonger", func(k *domain.SigningKey) { k.PublishUntil = k.PublishUntil.Add(24 * time.Hour) }},
		{"SignsEarlier", func(k *domain.SigningKey) { k.SignFrom = k.SignFrom.Add(-time.Hour) }},
		{"PassedOffAsLegacy", func(k *domain.SigningKey) { k.SignUntil, k.PublishUntil = time.Time{}, time.Time{} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ctx := context.Background()
			clock := newManualClock()
			store := inmem.NewSigningKeyRepository()
			i := startIssuer(t, store, rotationConfig(clock))
			stored, err := store.SigningKeys(ctx, clock.Now())
			if err != nil || len(stored) != 1 {
				t.Fatalf("stored = %v, %v", stored, err)
			}
			edited := stored[0]
			tt.edit(&edited)
			err = store.UpdateSigningKeys(ctx, clock.Now(), func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
				return []domain.SigningKey{edited}, nil
			})
			if err != nil {
				t.Fatal(err)
			}
			if err := i.Reload(ctx); err != nil {
				t.Fatal(err)
			}
			if kids := publishedKids(t, i.JWKS()); len(kids) != 0 {
				t.Errorf("JWKS publishes %v after the row's schedule was edited, want nothing", kids)
			}
			if _, err := i.IssueAccessToken(ctx, claims); err == nil {
				// The loaded set keeps no signer it does not trust.
				t.Error("the issuer signed with a key whose schedule was edited")
			}
		})
	}
}

// TestLegacyKeyGetsItsSchedule: a key an earlier version stored (sealed
// with its kid alone, without an end) is trusted, given an end, and sealed
// again with its schedule; it then signs on until its successor.
func TestLegacyKeyGetsItsSchedule(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	store := inmem.NewSigningKeyRepository()
	priv := newEdDSAKey(t).key.(ed25519.PrivateKey)
	kid := thumbprint(priv.Public().(ed25519.PublicKey))
	legacy := domain.SigningKey{
		ID: kid, Algorithm: tokens.EdDSA, PublicKey: pkix(t, priv.Public()),
		SealedPrivateKey: newBox(t, kek).Seal(pkcs8(t, priv), []byte(kid)),
		CreatedAt:        clock.Now().Add(-time.Hour), SignFrom: clock.Now().Add(-time.Hour),
	}
	err := store.UpdateSigningKeys(ctx, clock.Now(), func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
		return []domain.SigningKey{legacy}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	i := startIssuer(t, store, rotationConfig(clock))
	if got := kidOf(t, issue(t, i)); got != kid {
		t.Errorf("signed with %s, want the legacy key", got)
	}
	stored, err := store.SigningKeys(ctx, clock.Now())
	if err != nil || len(stored) != 1 {
		t.Fatalf("stored = %v, %v; want the legacy key alone", stored, err)
	}
	k := stored[0]
	if want := legacy.SignFrom.Add(10 * time.Hour); !k.SignUntil.Equal(want) {
		t.Errorf("legacy key signs until %v, want %v (a period after it began)", k.SignUntil, want)
	}
	if bytes.Equal(k.SealedPrivateKey, legacy.SealedPrivateKey) {
		t.Error("the legacy key was not sealed again with its schedule")
	}
}

// TestKeyCreatedHook: every key created is reported in the store's
// transaction, and a failing report stores no key.
func TestKeyCreatedHook(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	store := inmem.NewSigningKeyRepository()
	cfg := rotationConfig(clock)
	refused := errors.New("outbox refused")
	cfg.OnKeyCreated = func(context.Context, domain.SigningKey) error { return refused }
	if _, err := tokens.NewIssuer(ctx, store, cfg); !errors.Is(err, refused) {
		t.Fatalf("NewIssuer = %v, want the hook's error", err)
	}
	if st := storedStates(t, store, clock.Now()); len(st) != 0 {
		t.Fatalf("keys stored although the hook failed: %v", st)
	}

	var reported []domain.SigningKey
	cfg.OnKeyCreated = func(_ context.Context, k domain.SigningKey) error {
		reported = append(reported, k)
		return nil
	}
	i := startIssuer(t, store, cfg)
	clock.Set(clock.Now().Add(9 * time.Hour))
	if err := i.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	if len(reported) != 2 {
		t.Fatalf("%d keys reported, want the first and its successor", len(reported))
	}
	if want := reported[0].SignFrom.Add(10 * time.Hour); !reported[1].SignFrom.Equal(want) {
		t.Errorf("successor reported signing from %v, want %v", reported[1].SignFrom, want)
	}
}

// TestOperatorCommands: what an operator's rotation, retirement and
// rewrap do to the stored keys, and to an issuer that reloads them.
func TestOperatorCommands(t *testing.T) {
	ctx := context.Background()
	newKEK := bytes.Repeat([]byte{0x44}, seal.KeySize)
	tests := []struct {
		name string
		run  func(t *testing.T, m *tokens.Manager, first string) []tokens.KeyStatus
		// want: the states of the first key and of the keys created
		first, created domain.KeyState
		signs          string // "first" or "created": who signs now
	}{
		{"ScheduledRotation", func(t *testing.T, m *tokens.Manager, _ string) []tokens.KeyStatus {
			ks, err := m.Rotate(ctx, tokens.Scheduled)
			must(t, err)
			return ks
		}, domain.KeyCurrent, domain.KeyNext, "first"},
		{"EmergencyRotation", func(t *testing.T, m *tokens.Manager, _ string) []tokens.KeyStatus {
			ks, err := m.Rotate(ctx, tokens.Emergency)
			must(t, err)
			return ks
		}, domain.KeyRemoved, domain.KeyCurrent, "created"},
		{"RetireCurrent", func(t *testing.T, m *tokens.Manager, first string) []tokens.KeyStatus {
			ks, err := m.Retire(ctx, first, false)
			must(t, err)
			return ks
		}, domain.KeyRetired, domain.KeyCurrent, "created"},
		{"RemoveCurrent", func(t *testing.T, m *tokens.Manager, first string) []tokens.KeyStatus {
			ks, err := m.Retire(ctx, first, true)
			must(t, err)
			return ks
		}, domain.KeyRemoved, domain.KeyCurrent, "created"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clock := newManualClock()
			store := inmem.NewSigningKeyRepository()
			i := startIssuer(t, store, rotationConfig(clock))
			firstToken := issue(t, i)
			first := kidOf(t, firstToken)
			m, err := tokens.NewManager(store, rotationConfig(clock))
			must(t, err)

			created := tt.run(t, m, first)
			if len(created) != 1 {
				t.Fatalf("created %d keys, want 1", len(created))
			}
			states := storedStates(t, store, clock.Now())
			if got := stateOr(states, first); got != tt.first {
				t.Errorf("first key %s, want %s", got, tt.first)
			}
			if got := stateOr(states, created[0].ID); got != tt.created {
				t.Errorf("created key %s, want %s", got, tt.created)
			}
			must(t, i.Reload(ctx))
			want := map[string]string{"first": first, "created": created[0].ID}[tt.signs]
			if got := kidOf(t, issue(t, i)); got != want {
				t.Errorf("issuer signs with %s, want the %s key %s", got, tt.signs, want)
			}
			_, err = i.VerifyAccessToken(firstToken)
			if removed := tt.first == domain.KeyRemoved; (err == nil) == removed {
				t.Errorf("first key's token verifies = %v, want %v", err == nil, !removed)
			}
		})
	}

	t.Run("RetireNextMakesNoKey", func(t *testing.T) {
		clock := newManualClock()
		store := inmem.NewSigningKeyRepository()
		startIssuer(t, store, rotationConfig(clock))
		m, err := tokens.NewManager(store, rotationConfig(clock))
		must(t, err)
		next, err := m.Rotate(ctx, tokens.Scheduled)
		must(t, err)
		created, err := m.Retire(ctx, next[0].ID, true)
		must(t, err)
		if len(created) != 0 || stateOr(storedStates(t, store, clock.Now()), next[0].ID) != domain.KeyRemoved {
			t.Errorf("retiring the next key created %v and left it %v; want nothing created and it removed",
				created, stateOr(storedStates(t, store, clock.Now()), next[0].ID))
		}
		if _, err := m.Retire(ctx, "no-such-kid", false); !errors.Is(err, tokens.ErrNoSuchKey) {
			t.Errorf("Retire of an unknown kid = %v, want ErrNoSuchKey", err)
		}
	})

	t.Run("Rewrap", func(t *testing.T) {
		clock := newManualClock()
		store := inmem.NewSigningKeyRepository()
		i := startIssuer(t, store, rotationConfig(clock))
		token := issue(t, i)
		both := rotationConfig(clock)
		both.KeyEncryptionKey, both.OlderKeyEncryptionKeys = newKEK, [][]byte{kek}
		m, err := tokens.NewManager(store, both)
		must(t, err)
		list, err := m.List(ctx)
		must(t, err)
		if len(list) != 1 || !list[0].Stale || list[0].Untrusted != "" {
			t.Fatalf("List = %+v, want one trusted key sealed under the older KEK", list)
		}
		n, err := m.Rewrap(ctx)
		if err != nil || n != 1 {
			t.Fatalf("Rewrap = %d, %v; want 1 key sealed again", n, err)
		}
		list, err = m.List(ctx)
		must(t, err)
		if list[0].Stale {
			t.Error("the key is still stale after Rewrap")
		}
		onlyNew := rotationConfig(clock)
		onlyNew.KeyEncryptionKey = newKEK
		j := startIssuer(t, store, onlyNew)
		if _, err := j.VerifyAccessToken(token); err != nil {
			t.Errorf("a worker with only the new KEK refuses a token of before the rewrap: %v", err)
		}
		if _, err := tokens.NewIssuer(ctx, store, rotationConfig(clock)); err == nil || !strings.Contains(err.Error(), "trusted") {
			t.Errorf("a worker with only the old KEK started (%v), want it refused", err)
		}
	})
}

func stateOr(states map[string]domain.KeyState, kid string) domain.KeyState {
	if s, ok := states[kid]; ok {
		return s
	}
	return domain.KeyRemoved
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
