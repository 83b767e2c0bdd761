package tokens_test

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/tokens"
)

// thumbprint is the RFC 7638 thumbprint of an Ed25519 key, as the issuer
// names its keys.
func thumbprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256([]byte(`{"crv":"Ed25519","kty":"OKP","x":"` + b64url.EncodeToString(pub) + `"}`))
	return b64url.EncodeToString(sum[:])
}

func pkix(tb testing.TB, pub crypto.PublicKey) []byte {
	tb.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func pkcs8(tb testing.TB, priv any) []byte {
	tb.Helper()
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		tb.Fatal(err)
	}
	return der
}

func newBox(tb testing.TB, kek []byte) *seal.Box {
	tb.Helper()
	box, err := seal.NewBox(kek, "signing keys")
	if err != nil {
		tb.Fatal(err)
	}
	return box
}

// publishedKids returns the kids of a JWKS.
func publishedKids(tb testing.TB, jwks []byte) []string {
	tb.Helper()
	var set tokens.JWKS
	if err := json.Unmarshal(jwks, &set); err != nil {
		tb.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// forgery is a row written straight into the signing-key table, and the
// private key of its public half when the forger has it.
type forgery struct {
	row    domain.SigningKey
	signer *jwsKey
}

// TestReloadTrustsOnlyKeysWeSealed writes forged rows into the signing-key
// store, as one with write access to the database alone could, and checks
// that the issuer neither publishes nor trusts them, keeps signing with its
// own key, and logs each at error level by kid, without key material. The
// rows sealed under our key-encryption key each break one check only; one
// who holds that key could seal a consistent row, which is why the KEK is
// the root of trust.
func TestReloadTrustsOnlyKeysWeSealed(t *testing.T) {
	ours, otherKEK := newBox(t, kek), newBox(t, bytes.Repeat([]byte{0x43}, seal.KeySize))

	// edRow returns a consistent EdDSA row for priv, sealed by box under
	// the kid, with edits applied.
	edRow := func(t *testing.T, priv ed25519.PrivateKey, box *seal.Box, edit func(*domain.SigningKey)) forgery {
		pub := priv.Public().(ed25519.PublicKey)
		kid := thumbprint(pub)
		row := domain.SigningKey{
			ID: kid, Algorithm: tokens.EdDSA, PublicKey: pkix(t, pub),
			SealedPrivateKey: box.Seal(pkcs8(t, priv), []byte(kid)),
		}
		if edit != nil {
			edit(&row)
		}
		return forgery{row: row, signer: &jwsKey{method: jwt.SigningMethodEdDSA, key: priv}}
	}
	attackerKey := func(t *testing.T) ed25519.PrivateKey { return newEdDSAKey(t).key.(ed25519.PrivateKey) }

	tests := []struct {
		name   string
		forge  func(t *testing.T, genuine domain.SigningKey) forgery
		policy string // what the row breaks, for the reader
	}{
		{"GarbageSealedHalf", func(t *testing.T, _ domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) { r.SealedPrivateKey = bytes.Repeat([]byte{7}, 80) })
		}, "the sealed half must open under our KEK"},
		{"SealedUnderAnotherKEK", func(t *testing.T, _ domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), otherKEK, nil)
		}, "the sealed half must open under our KEK"},
		{"GenuineSealedHalfMoved", func(t *testing.T, genuine domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) { r.SealedPrivateKey = genuine.SealedPrivateKey })
		}, "the sealed half is bound to its kid"},
		{"SealedHalfNotAKey", func(t *testing.T, _ domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) { r.SealedPrivateKey = ours.Seal([]byte("not a key"), []byte(r.ID)) })
		}, "the private half must parse"},
		{"PrivateHalfOfAnotherKey", func(t *testing.T, _ domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) {
				r.SealedPrivateKey = ours.Seal(pkcs8(t, attackerKey(t)), []byte(r.ID))
			})
		}, "the public half must be the private half's"},
		{"AlgorithmNotTheKeys", func(t *testing.T, _ domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) { r.Algorithm = tokens.ES256 })
		}, "the key must be of the row's algorithm"},
		{"ECKeyUnderEdDSA", func(t *testing.T, _ domain.SigningKey) forgery {
			priv := newES256Key(t).key.(*ecdsa.PrivateKey)
			f := edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) {
				r.PublicKey = pkix(t, priv.Public())
				r.SealedPrivateKey = ours.Seal(pkcs8(t, priv), []byte(r.ID))
			})
			f.signer = nil
			return f
		}, "the key must be of the row's algorithm"},
		{"KidNotThumbprint", func(t *testing.T, _ domain.SigningKey) forgery {
			priv := attackerKey(t)
			return edRow(t, priv, ours, func(r *domain.SigningKey) {
				r.ID = "attacker"
				r.SealedPrivateKey = ours.Seal(pkcs8(t, priv), []byte(r.ID))
			})
		}, "the kid must be the public key's thumbprint"},
		{"UnknownAlgorithm", func(t *testing.T, _ domain.SigningKey) forgery {
			return edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) { r.Algorithm = "HS256" })
		}, "the algorithm must be one we sign with"},
		{"PublicHalfNotPKIX", func(t *testing.T, _ domain.SigningKey) forgery {
			f := edRow(t, attackerKey(t), ours, func(r *domain.SigningKey) { r.PublicKey = []byte("not a key") })
			f.signer = nil
			return f
		}, "the public half must parse"},
	}
	for _, tt := range tests {
		for _, when := range []struct {
			name     string
			signFrom time.Duration
		}{
			{"PrePublished", time.Hour}, // published, not signing yet
			{"SigningNow", time.Second}, // the newest key that signs
		} {
			t.Run(tt.name+"/"+when.name, func(t *testing.T) {
				now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
				clock := func() time.Time { return now }
				var logs bytes.Buffer
				store := inmem.NewSigningKeyRepository()
				i, err := tokens.NewIssuer(context.Background(), store, tokens.Config{
					Issuer: "https://auth.example.com", Audience: []string{"api"},
					KeyEncryptionKey: kek, Now: clock,
					Logger: slog.New(slog.NewJSONHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug})),
				})
				if err != nil {
					t.Fatal(err)
				}
				stored, err := store.SigningKeys(context.Background(), now)
				if err != nil || len(stored) != 1 {
					t.Fatalf("stored keys = %d (%v), want 1", len(stored), err)
				}
				genuine := stored[0]

				now = now.Add(time.Second)
				f := tt.forge(t, genuine)
				f.row.CreatedAt, f.row.SignFrom = now, now.Add(when.signFrom-time.Second)
				err = store.UpdateSigningKeys(context.Background(), now, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
					return []domain.SigningKey{f.row}, nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := i.Reload(context.Background()); err != nil {
					t.Fatalf("Reload = %v, want the forged row skipped", err)
				}

				kids := publishedKids(t, i.JWKS())
				if slices.Contains(kids, f.row.ID) {
					t.Errorf("JWKS publishes the forged kid %q (%s)", f.row.ID, tt.policy)
				}
				if !slices.Contains(kids, genuine.ID) {
					t.Errorf("JWKS kids = %v, want the genuine %q", kids, genuine.ID)
				}
				if f.signer != nil {
					forged := forger{t: t, now: now}
					token := forged.sign(*f.signer, forged.header(f.signer.method.Alg(), f.row.ID), forged.claims())
					if _, err := i.VerifyAccessToken(token); domain.ErrorCode(err) != domain.CodeUnauthorized {
						t.Errorf("VerifyAccessToken(token signed by the forged key) = %v, want unauthorized", err)
					}
				}

				at, err := i.IssueAccessToken(context.Background(), claims)
				if err != nil {
					t.Fatal(err)
				}
				if kid := decodeSegment(t, at.Token, 0)["kid"]; kid != genuine.ID {
					t.Errorf("token signed by kid %v, want the genuine %q", kid, genuine.ID)
				}
				if _, err := i.VerifyAccessToken(at.Token); err != nil {
					t.Errorf("VerifyAccessToken(own token) = %v", err)
				}

				checkSkipLogged(t, logs.String(), f.row)
			})
		}
	}
}

// checkSkipLogged reports an error unless logs, one JSON record a line,
// hold an error naming the row's kid and a reason, and no key material.
func checkSkipLogged(tb testing.TB, logs string, row domain.SigningKey) {
	tb.Helper()
	var found bool
	for line := range strings.Lines(logs) {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			tb.Fatalf("log line %q: %v", line, err)
		}
		if rec["level"] == "ERROR" && rec["kid"] == row.ID && rec["reason"] != "" && rec["reason"] != nil {
			found = true
		}
	}
	if !found {
		tb.Errorf("no error logged with kid %q and a reason; logs:\n%s", row.ID, logs)
	}
	for _, material := range [][]byte{row.PublicKey, row.SealedPrivateKey} {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
			if s := enc.EncodeToString(material); strings.Contains(logs, s[:min(len(s), 16)]) {
				tb.Errorf("logs hold key material")
			}
		}
	}
}

// TestNewIssuerRefusesToSignWithUntrustedKey: when the only key that could
// sign is one the issuer cannot trust (here, sealed under another
// key-encryption key, as a misconfigured worker would see every key), the
// issuer does not start rather than sign with it or beside it.
func TestNewIssuerRefusesToSignWithUntrustedKey(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	store := inmem.NewSigningKeyRepository()
	priv := newEdDSAKey(t).key.(ed25519.PrivateKey)
	kid := thumbprint(priv.Public().(ed25519.PublicKey))
	err := store.UpdateSigningKeys(context.Background(), now, func(context.Context, []domain.SigningKey) ([]domain.SigningKey, error) {
		return []domain.SigningKey{{
			ID: kid, Algorithm: tokens.EdDSA, PublicKey: pkix(t, priv.Public()),
			SealedPrivateKey: newBox(t, bytes.Repeat([]byte{0x43}, seal.KeySize)).Seal(pkcs8(t, priv), []byte(kid)),
			CreatedAt:        now, SignFrom: now,
		}}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	i, err := tokens.NewIssuer(context.Background(), store, tokens.Config{
		Issuer: "https://auth.example.com", Audience: []string{"api"}, KeyEncryptionKey: kek,
		Now: func() time.Time { return now },
	})
	if err == nil {
		t.Errorf("NewIssuer succeeded, publishing %v; want an error", publishedKids(t, i.JWKS()))
	}
}

// doublingStore returns every stored key twice, as a store that lost its
// unique index on kid would.
type doublingStore struct{ *inmem.SigningKeyRepository }

func (s doublingStore) SigningKeys(ctx context.Context, now time.Time) ([]domain.SigningKey, error) {
	keys, err := s.SigningKeyRepository.SigningKeys(ctx, now)
	return append(keys, keys...), err
}

// TestJWKSIdentityFollowsTheSet: the JWKS slice stays the same across
// reloads that find the same keys, so that what the HTTP server derives
// from it (the ETag) is derived once per set; it changes when a key is
// added; and each kid is published once even when the store repeats a row.
func TestJWKSIdentityFollowsTheSet(t *testing.T) {
	ctx := context.Background()
	store := doublingStore{inmem.NewSigningKeyRepository()}
	i := newIssuer(t, store, tokens.EdDSA, time.Now)
	first := i.JWKS()
	firstBytes := bytes.Clone(first)
	if kids := publishedKids(t, first); len(kids) != 1 {
		t.Fatalf("published kids %v, want the one key once", kids)
	}
	if err := i.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if again := i.JWKS(); &again[0] != &first[0] || len(again) != len(first) {
		t.Error("a reload that found the same keys replaced the JWKS slice")
	}
	newIssuer(t, store, tokens.ES256, time.Now) // another worker, another algorithm
	if err := i.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	changed := i.JWKS()
	if bytes.Equal(changed, first) {
		t.Fatal("the JWKS did not change when a key was added")
	}
	if !bytes.Equal(first, firstBytes) {
		t.Error("the slice returned before the change was modified")
	}
	if kids := publishedKids(t, changed); len(kids) != 2 || kids[0] == kids[1] {
		t.Errorf("published kids %v, want two distinct", kids)
	}
}
