package tokens_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

var kek = bytes.Repeat([]byte{0x42}, seal.KeySize)

func newIssuer(t *testing.T, store domain.SigningKeyRepository, alg string, now func() time.Time) *tokens.Issuer {
	t.Helper()
	i, err := tokens.NewIssuer(context.Background(), store, tokens.Config{
		Issuer:           "https://auth.example.com",
		Audience:         []string{"api"},
		AccessTTL:        15 * time.Minute,
		Algorithm:        alg,
		KeyEncryptionKey: kek,
		Now:              now,
	})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

var claims = domain.AccessClaims{UserID: "00000000-0000-7000-8000-000000000001", SessionID: "00000000-0000-7000-8000-000000000002", ClientID: "web"}

func TestIssueAndVerify(t *testing.T) {
	for _, alg := range []string{tokens.EdDSA, tokens.ES256, tokens.RS256} {
		t.Run(alg, func(t *testing.T) {
			now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
			i := newIssuer(t, inmem.NewSigningKeyRepository(), alg, func() time.Time { return now })
			at, err := i.IssueAccessToken(context.Background(), claims)
			if err != nil {
				t.Fatal(err)
			}
			if !at.ExpiresAt.Equal(now.Add(15 * time.Minute)) {
				t.Errorf("ExpiresAt = %v, want now+15m", at.ExpiresAt)
			}
			got, err := i.VerifyAccessToken(at.Token)
			if err != nil {
				t.Fatal(err)
			}
			if got.AccessClaims != claims || got.ID != at.ID {
				t.Errorf("verified claims = %+v, want %+v with jti %q", got, claims, at.ID)
			}
			header := decodeSegment(t, at.Token, 0)
			if header["typ"] != "at+jwt" || header["alg"] != alg || header["kid"] == "" {
				t.Errorf("header = %v, want typ at+jwt, alg %s and a kid", header, alg)
			}
			payload := decodeSegment(t, at.Token, 1)
			for _, c := range []string{"iss", "sub", "aud", "exp", "iat", "jti", "sid", "client_id"} {
				if _, ok := payload[c]; !ok {
					t.Errorf("claim %s missing from %v", c, payload)
				}
			}
		})
	}
}

// TestIssueRefusesIncompleteClaims: the issuer never signs a token without
// the sub, sid and client_id claims that verifiers require (RFC 9068 §2.2).
func TestIssueRefusesIncompleteClaims(t *testing.T) {
	i := newIssuer(t, inmem.NewSigningKeyRepository(), tokens.EdDSA, time.Now)
	tests := []struct {
		name   string
		claims domain.AccessClaims
	}{
		{"NoUser", domain.AccessClaims{SessionID: claims.SessionID, ClientID: claims.ClientID}},
		{"NoSession", domain.AccessClaims{UserID: claims.UserID, ClientID: claims.ClientID}},
		{"NoClient", domain.AccessClaims{UserID: claims.UserID, SessionID: claims.SessionID}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at, err := i.IssueAccessToken(context.Background(), tt.claims)
			if got, want := domain.ErrorCode(err), domain.CodeInternal; got != want {
				t.Errorf("IssueAccessToken error code = %q (%v), want %q", got, err, want)
			}
			if at.Token != "" {
				t.Error("IssueAccessToken returned a token for incomplete claims")
			}
		})
	}
}

// TestJWKSVerifiesWithStandardLibrary verifies a token the way a service
// would: from the published JWKS alone, with golang-jwt.
func TestJWKSVerifiesWithStandardLibrary(t *testing.T) {
	i := newIssuer(t, inmem.NewSigningKeyRepository(), tokens.EdDSA, time.Now)
	at, err := i.IssueAccessToken(context.Background(), claims)
	if err != nil {
		t.Fatal(err)
	}
	var set struct {
		Keys []map[string]string `json:"keys"`
	}
	if err := json.Unmarshal(i.JWKS(), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, want 1", len(set.Keys))
	}
	k := set.Keys[0]
	for _, private := range []string{"d", "p", "q", "dp", "dq", "qi"} {
		if _, ok := k[private]; ok {
			t.Errorf("JWKS publishes private member %q", private)
		}
	}
	x, err := base64.RawURLEncoding.DecodeString(k["x"])
	if err != nil || k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["use"] != "sig" {
		t.Fatalf("JWK = %v, want an Ed25519 signing key", k)
	}
	parsed, err := jwt.Parse(at.Token, func(tok *jwt.Token) (any, error) {
		if tok.Header["kid"] != k["kid"] {
			t.Errorf("token kid %v, JWKS kid %v", tok.Header["kid"], k["kid"])
		}
		return ed25519.PublicKey(x), nil
	}, jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithAudience("api"), jwt.WithIssuer("https://auth.example.com"))
	if err != nil || !parsed.Valid {
		t.Fatalf("token does not verify with the JWKS key: %v", err)
	}
}

func TestVerifyRejects(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	store := inmem.NewSigningKeyRepository()
	i := newIssuer(t, store, tokens.EdDSA, clock)
	at, err := i.IssueAccessToken(context.Background(), claims)
	if err != nil {
		t.Fatal(err)
	}
	other := newIssuer(t, inmem.NewSigningKeyRepository(), tokens.EdDSA, clock)
	foreign, err := other.IssueAccessToken(context.Background(), claims)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(at.Token, ".")
	tests := []struct {
		name  string
		token string
		at    time.Time
	}{
		{"Expired", at.Token, now.Add(16 * time.Minute)},
		{"TamperedPayload", parts[0] + "." + parts[1] + "x." + parts[2], now},
		{"UnknownKey", foreign.Token, now},
		{"AlgNone", b64json(t, map[string]any{"alg": "none", "typ": "at+jwt"}) + "." + parts[1] + ".", now},
		{"WrongType", b64json(t, map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": decodeSegment(t, at.Token, 0)["kid"]}) + "." + parts[1] + "." + parts[2], now},
		{"Garbage", "not a token", now},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			defer func() { now = time.Now() }()
			if _, err := i.VerifyAccessToken(tt.token); domain.ErrorCode(err) != domain.CodeUnauthorized {
				t.Errorf("VerifyAccessToken = %v, want unauthorized", err)
			}
		})
	}
}

// TestWorkersShareOneKey starts several issuers on one store at once, as
// several workers would: exactly one key is created and all sign with it.
func TestWorkersShareOneKey(t *testing.T) {
	store := inmem.NewSigningKeyRepository()
	var wg sync.WaitGroup
	issuers := make([]*tokens.Issuer, 5)
	for n := range issuers {
		wg.Go(func() { issuers[n] = newIssuer(t, store, tokens.EdDSA, time.Now) })
	}
	wg.Wait()
	keys, err := store.SigningKeys(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 1 {
		t.Fatalf("%d keys created, want 1", len(keys))
	}
	at, err := issuers[0].IssueAccessToken(context.Background(), claims)
	if err != nil {
		t.Fatal(err)
	}
	for n, i := range issuers {
		if _, err := i.VerifyAccessToken(at.Token); err != nil {
			t.Errorf("issuer %d rejects a token of issuer 0: %v", n, err)
		}
	}
}

func TestPrivateKeySealedAtRest(t *testing.T) {
	store := inmem.NewSigningKeyRepository()
	newIssuer(t, store, tokens.EdDSA, time.Now)
	keys, err := store.SigningKeys(context.Background(), time.Now())
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys = %v, %v", keys, err)
	}
	sealed := keys[0].SealedPrivateKey
	// A PKCS #8 Ed25519 key starts with this DER prefix; sealed, it must not.
	if bytes.Contains(sealed, []byte{0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70}) {
		t.Error("stored private key is in the clear")
	}

	// A worker with another key-encryption key cannot use the stored key.
	_, err = tokens.NewIssuer(context.Background(), store, tokens.Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"},
		KeyEncryptionKey: bytes.Repeat([]byte{0x43}, seal.KeySize),
	})
	if err == nil {
		t.Error("issuer with the wrong key-encryption key started, want error")
	}
}

func TestConfigValidate(t *testing.T) {
	tests := []struct {
		name string
		cfg  tokens.Config
	}{
		{"NoIssuer", tokens.Config{Audience: []string{"api"}, KeyEncryptionKey: kek}},
		{"NoAudience", tokens.Config{Issuer: "i", KeyEncryptionKey: kek}},
		{"EmptyAudience", tokens.Config{Issuer: "i", Audience: []string{""}, KeyEncryptionKey: kek}},
		{"ShortKEK", tokens.Config{Issuer: "i", Audience: []string{"api"}, KeyEncryptionKey: kek[:16]}},
		{"UnknownAlg", tokens.Config{Issuer: "i", Audience: []string{"api"}, KeyEncryptionKey: kek, Algorithm: "HS256"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), tt.cfg); err == nil {
				t.Error("NewIssuer succeeded, want a config error")
			}
		})
	}
}

func decodeSegment(t *testing.T, token string, i int) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[i])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func b64json(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

func BenchmarkIssueAccessToken(b *testing.B) {
	for _, alg := range []string{tokens.EdDSA, tokens.ES256, tokens.RS256} {
		b.Run(alg, func(b *testing.B) {
			i, err := tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), tokens.Config{
				Issuer: "https://auth.example.com", Audience: []string{"api"}, Algorithm: alg, KeyEncryptionKey: kek,
			})
			if err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := i.IssueAccessToken(context.Background(), claims); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// lockWatch is a signing-key store that knows while an update (the
// repository's lock) is held, and a randomness source that counts the reads
// made while it is.
type lockWatch struct {
	domain.SigningKeyRepository
	mu            sync.Mutex
	locked        bool
	readsInUpdate int
}

func (w *lockWatch) UpdateSigningKeys(ctx context.Context, now time.Time, update func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error)) error {
	return w.SigningKeyRepository.UpdateSigningKeys(ctx, now, func(ctx context.Context, keys []domain.SigningKey) ([]domain.SigningKey, error) {
		w.mu.Lock()
		w.locked = true
		w.mu.Unlock()
		defer func() {
			w.mu.Lock()
			w.locked = false
			w.mu.Unlock()
		}()
		return update(ctx, keys)
	})
}

func (w *lockWatch) Read(p []byte) (int, error) {
	w.mu.Lock()
	if w.locked {
		w.readsInUpdate++
	}
	w.mu.Unlock()
	return rand.Read(p)
}

// TestKeyGeneratedOutsideTheLock: the first key is drawn before the store's
// update runs, so no worker waits on the lock while another generates.
func TestKeyGeneratedOutsideTheLock(t *testing.T) {
	w := &lockWatch{SigningKeyRepository: inmem.NewSigningKeyRepository()}
	_, err := tokens.NewIssuer(context.Background(), w, tokens.Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, Algorithm: tokens.EdDSA, // ECDSA and RSA ignore Random since Go 1.26
		KeyEncryptionKey: kek, Random: w,
	})
	if err != nil {
		t.Fatal(err)
	}
	if w.readsInUpdate != 0 {
		t.Errorf("%d reads of randomness while the signing-key lock was held, want none", w.readsInUpdate)
	}
	keys, err := w.SigningKeys(context.Background(), time.Now())
	if err != nil || len(keys) != 1 {
		t.Fatalf("stored keys = %d (%v), want 1", len(keys), err)
	}
}

// racingStore lets another worker store its first key just before the
// first update of this one runs, as happens when workers start together.
type racingStore struct {
	domain.SigningKeyRepository
	once  sync.Once
	other func()
}

func (s *racingStore) UpdateSigningKeys(ctx context.Context, now time.Time, update func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error)) error {
	s.once.Do(s.other)
	return s.SigningKeyRepository.UpdateSigningKeys(ctx, now, update)
}

// TestWorkerKeepsKeyStoredWhileItGenerated: a worker that generated a key
// while another stored one keeps the other's key, although that key's
// SignFrom is later than the clock reading the first worker started with.
func TestWorkerKeepsKeyStoredWhileItGenerated(t *testing.T) {
	var mu sync.Mutex
	tick := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	clock := func() time.Time { // every reading is a second later
		mu.Lock()
		defer mu.Unlock()
		tick = tick.Add(time.Second)
		return tick
	}
	inner := inmem.NewSigningKeyRepository()
	store := &racingStore{SigningKeyRepository: inner, other: func() { newIssuer(t, inner, tokens.EdDSA, clock) }}
	newIssuer(t, store, tokens.EdDSA, clock)
	keys, err := inner.SigningKeys(context.Background(), clock())
	if err != nil {
		t.Fatal(err)
	}
	if got, want := len(keys), 1; got != want {
		t.Errorf("%d keys stored, want %d", got, want)
	}
}
