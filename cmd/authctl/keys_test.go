package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/postgres"
	"github.com/authworker/authworker/seal"
	"github.com/authworker/authworker/testenv"
	"github.com/authworker/authworker/tokens"
)

// Key-encryption keys of the keys tests: A the workers' first, B its
// successor.
var (
	kekA = bytes.Repeat([]byte{0xa}, seal.KeySize)
	kekB = bytes.Repeat([]byte{0xb}, seal.KeySize)
)

func b64(k []byte) string { return base64.StdEncoding.EncodeToString(k) }

// keysStore is a fresh database with the first signing key a worker with
// KEK A made, and authctl's environment pointed at it with that KEK. Every
// other setting is the default, as a worker's would be.
type keysStore struct {
	url   string
	store *postgres.SigningKeyRepository
	first string // the kid of the first key
}

func newKeysStore(t *testing.T) *keysStore {
	t.Helper()
	url := testenv.Database(t)
	for _, name := range []string{"AUTH_SIGNING_ALG", "AUTH_SIGNING_ALGS", "AUTH_CLIENT_SIGNING_ALGS", "AUTH_ACCESS_TOKEN_TTL", "AUTH_KEY_ROTATION_PERIOD",
		"AUTH_KEY_PREPUBLISH", "AUTH_KEY_RELOAD_INTERVAL", "AUTH_EVENTS_TOPIC", "AUTH_EVENT_SOURCE", "AUTH_ISSUER"} {
		t.Setenv(name, "")
	}
	t.Setenv("DATABASE_URL", url)
	t.Setenv("AUTH_KEY_ENCRYPTION_KEY", b64(kekA))
	db, err := postgres.Open(context.Background(), postgres.Config{URL: url})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(db.Close)
	if err := db.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	s := &keysStore{url: url, store: postgres.NewSigningKeyRepository(db)}
	issuer := s.issuer(t, kekA)
	kids := publishedKidsOf(t, issuer.JWKS())
	if len(kids) != 1 {
		t.Fatalf("a worker's first start published %v, want one key", kids)
	}
	s.first = kids[0]
	return s
}

// issuer starts an Issuer on the store, as a worker with only kek would.
func (s *keysStore) issuer(t *testing.T, kek []byte, older ...[]byte) *tokens.Issuer {
	t.Helper()
	i, err := tokens.NewIssuer(context.Background(), s.store, tokens.Config{
		Issuer: "https://auth.test", Audience: []string{"api"}, KeyEncryptionKey: kek, OlderKeyEncryptionKeys: older,
	})
	if err != nil {
		t.Fatalf("an issuer with the test's KEKs does not start: %v", err)
	}
	return i
}

// published returns the kids the store publishes now.
func (s *keysStore) published(t *testing.T) []string {
	t.Helper()
	ks, err := s.store.SigningKeys(context.Background(), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range ks {
		kids = append(kids, k.ID)
	}
	return kids
}

func publishedKidsOf(t *testing.T, jwks []byte) []string {
	t.Helper()
	var set tokens.JWKS
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, k := range set.Keys {
		kids = append(kids, k.Kid)
	}
	return kids
}

// authctl runs authctl with args and returns what it printed.
func authctl(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, nil, &out)
	return out.String(), err
}

func mustAuthctl(t *testing.T, args ...string) string {
	t.Helper()
	out, err := authctl(t, args...)
	if err != nil {
		t.Fatalf("authctl %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// listed is keys list -json.
func listed(t *testing.T) []printedKey {
	t.Helper()
	var ks []printedKey
	if err := json.Unmarshal([]byte(mustAuthctl(t, "keys", "list", "-json")), &ks); err != nil {
		t.Fatal(err)
	}
	return ks
}

func find(ks []printedKey, kid string) *printedKey {
	i := slices.IndexFunc(ks, func(k printedKey) bool { return k.Kid == kid })
	if i < 0 {
		return nil
	}
	return &ks[i]
}

// current returns the key that signs now.
func current(t *testing.T, ks []printedKey) printedKey {
	t.Helper()
	var cur []printedKey
	for _, k := range ks {
		if k.State == domain.KeyCurrent {
			cur = append(cur, k)
		}
	}
	if len(cur) != 1 {
		t.Fatalf("keys %+v: %d current, want 1", ks, len(cur))
	}
	return cur[0]
}

// TestKeysCommands runs each command on a store a worker made, and checks
// what it did to the stored keys and what it said.
func TestKeysCommands(t *testing.T) {
	tests := []struct {
		name string
		// run runs the commands on the store whose first key is first,
		// and returns what the last printed.
		run   func(t *testing.T, s *keysStore) string
		check func(t *testing.T, s *keysStore, out string, ks []printedKey)
	}{
		{"ListShowsTheFirstKey", func(t *testing.T, s *keysStore) string {
			return mustAuthctl(t, "keys", "list")
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			k := find(ks, s.first)
			if len(ks) != 1 || k == nil || k.State != domain.KeyCurrent || !k.Trusted || k.Stale || k.Algorithm != tokens.DefaultAlgorithm {
				t.Errorf("keys %+v, want the first key, current, trusted and fresh", ks)
			}
			for _, col := range []string{"KID", "SIGNS FROM", "PUBLISHED UNTIL", s.first, "current", "trusted"} {
				if !strings.Contains(out, col) {
					t.Errorf("table %q lacks %q", out, col)
				}
			}
		}},
		{"RotateScheduled", func(t *testing.T, s *keysStore) string {
			return mustAuthctl(t, "keys", "rotate")
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			first, next := find(ks, s.first), ks[len(ks)-1]
			if len(ks) != 2 || first.State != domain.KeyCurrent || next.State != domain.KeyNext {
				t.Fatalf("keys %+v, want the first current and a next key", ks)
			}
			if !first.SignsUntil.Equal(next.SignsFrom) {
				t.Errorf("the first key signs until %v, its successor from %v: want the same instant", first.SignsUntil, next.SignsFrom)
			}
			if wait := time.Until(next.SignsFrom); wait < 59*time.Minute || wait > time.Hour {
				t.Errorf("the successor signs in %v, want the pre-publication window (1h)", wait)
			}
			if !strings.Contains(out, "Created signing key "+next.Kid) || !strings.Contains(out, "No token in flight is affected") {
				t.Errorf("output %q, want the new kid and that no token is affected", out)
			}
		}},
		{"RotateScheduledTwiceMovesNothing", func(t *testing.T, s *keysStore) string {
			mustAuthctl(t, "keys", "rotate")
			return mustAuthctl(t, "keys", "rotate")
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			if len(ks) != 2 || !strings.Contains(out, "already published") || strings.Contains(out, "Created") {
				t.Errorf("keys %+v, output %q; want the same two keys and that a successor was published already", ks, out)
			}
		}},
		{"RotateEmergency", func(t *testing.T, s *keysStore) string {
			mustAuthctl(t, "keys", "rotate") // a next key, which leaves too
			return mustAuthctl(t, "keys", "rotate", "-emergency")
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			cur := current(t, ks)
			if len(ks) != 1 || cur.Kid == s.first {
				t.Fatalf("keys %+v, want only a new current key", ks)
			}
			if slices.Contains(s.published(t), s.first) {
				t.Error("the store still publishes the old key")
			}
			for _, want := range []string{"signing key " + cur.Kid + " (" + tokens.DefaultAlgorithm + ") signs from now", "Left the JWKS now: " + s.first, "stops verifying", "AUTH_JWKS_MAX_AGE", "refresh"} {
				if !strings.Contains(out, want) {
					t.Errorf("output %q lacks %q", out, want)
				}
			}
		}},
		{"RetireCurrentWithNext", func(t *testing.T, s *keysStore) string {
			mustAuthctl(t, "keys", "rotate")
			return mustAuthctl(t, "keys", "retire", s.first)
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			first := find(ks, s.first)
			if len(ks) != 2 || first == nil || first.State != domain.KeyRetired {
				t.Fatalf("keys %+v, want the first retired and still published", ks)
			}
			cur := current(t, ks)
			if time.Since(cur.SignsFrom) > time.Minute {
				t.Errorf("the next key signs from %v, want now", cur.SignsFrom)
			}
			if !strings.Contains(out, "The next key "+cur.Kid) || !strings.Contains(out, "they still verify") {
				t.Errorf("output %q, want the next key named and the old tokens still verifying", out)
			}
		}},
		{"RetireCurrentAlone", func(t *testing.T, s *keysStore) string {
			return mustAuthctl(t, "keys", "retire", s.first)
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			cur := current(t, ks)
			if len(ks) != 2 || cur.Kid == s.first || find(ks, s.first).State != domain.KeyRetired {
				t.Fatalf("keys %+v, want the first retired and a new key current", ks)
			}
			if !strings.Contains(out, "New signing key "+cur.Kid) {
				t.Errorf("output %q, want the new key named", out)
			}
		}},
		{"RetireAndRemove", func(t *testing.T, s *keysStore) string {
			return mustAuthctl(t, "keys", "retire", s.first, "-remove")
		}, func(t *testing.T, s *keysStore, out string, ks []printedKey) {
			if find(ks, s.first) != nil || slices.Contains(s.published(t), s.first) {
				t.Errorf("keys %+v, want the first key gone from the store's published set", ks)
			}
			current(t, ks)
			if !strings.Contains(out, "left the JWKS now") || !strings.Contains(out, "stops verifying") {
				t.Errorf("output %q, want that its tokens stop verifying", out)
			}
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := newKeysStore(t)
			out := tt.run(t, s)
			tt.check(t, s, out, listed(t))
			if strings.Contains(out, b64(kekA)) {
				t.Error("the output holds the KEK")
			}
		})
	}
}

// TestKeysErrors: authctl's own failures, each named, none with a code a
// worker's answer would have (they exit 1).
func TestKeysErrors(t *testing.T) {
	s := newKeysStore(t)
	tests := []struct {
		name string
		env  map[string]string
		args []string
		want string
	}{
		{"NoAction", nil, []string{"keys"}, "list, rotate, retire or rewrap is required"},
		{"UnknownAction", nil, []string{"keys", "burn"}, "unknown action"},
		{"RetireWithoutKid", nil, []string{"keys", "retire"}, "the kid of one key is required"},
		{"RetireUnknownKid", nil, []string{"keys", "retire", "no-such-kid"}, "no published signing key has this kid"},
		{"NoKEK", map[string]string{"AUTH_KEY_ENCRYPTION_KEY": ""}, []string{"keys", "list"}, "AUTH_KEY_ENCRYPTION_KEY is required"},
		{"BadOlderKEK", map[string]string{"AUTH_KEY_ENCRYPTION_KEY": b64(kekB) + ",no*pe"}, []string{"keys", "list"}, "AUTH_KEY_ENCRYPTION_KEY entry 2 of 2 is not valid base64"},
		{"BadDuration", map[string]string{"AUTH_KEY_PREPUBLISH": "soon"}, []string{"keys", "list"}, "AUTH_KEY_PREPUBLISH"},
		{"BadRotationSettings", map[string]string{"AUTH_KEY_ROTATION_PERIOD": "90m"}, []string{"keys", "list"}, "AUTH_KEY_*"},
		{"BadSigningAlgs", map[string]string{"AUTH_SIGNING_ALGS": "EdDSA,HS256"}, []string{"keys", "list"}, "AUTH_SIGNING_ALGS"},
		{"BadClientSigningAlgs", map[string]string{"AUTH_CLIENT_SIGNING_ALGS": "web=none"}, []string{"keys", "list"}, "AUTH_CLIENT_SIGNING_ALGS"},
		{"BadEventSource", map[string]string{"AUTH_EVENT_SOURCE": "not a uri"}, []string{"keys", "list"}, "AUTH_EVENT_SOURCE"},
		{"RotateWithAnotherKEK", map[string]string{"AUTH_KEY_ENCRYPTION_KEY": b64(kekB)}, []string{"keys", "rotate", "-emergency"}, "no stored signing key is trusted"},
		{"ScheduledRotateWithAnotherKEK", map[string]string{"AUTH_KEY_ENCRYPTION_KEY": b64(kekB)}, []string{"keys", "rotate"}, "no stored signing key is trusted"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			_, err := authctl(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("authctl %v: %v, want an error containing %q", tt.args, err, tt.want)
			}
			if code := domain.ErrorCode(err); code != domain.CodeInternal {
				t.Errorf("error code %q, want none (exit 1)", code)
			}
		})
	}
	if kids := s.published(t); len(kids) != 1 || kids[0] != s.first {
		t.Errorf("after the failed commands the store publishes %v, want the first key alone", kids)
	}
}

// TestKeysRewrap: with a new KEK in front, every key is stale; rewrap seals
// them under it, and then a worker with the new KEK alone trusts every key,
// and one with the old alone trusts none and does not start.
func TestKeysRewrap(t *testing.T) {
	s := newKeysStore(t)
	mustAuthctl(t, "keys", "rotate") // two keys to rewrap
	t.Setenv("AUTH_KEY_ENCRYPTION_KEY", b64(kekB)+","+b64(kekA))

	before := listed(t)
	if len(before) != 2 {
		t.Fatalf("keys %+v, want two", before)
	}
	for _, k := range before {
		if !k.Trusted || !k.Stale {
			t.Errorf("before rewrap, key %s trusted %v stale %v; want trusted and stale", k.Kid, k.Trusted, k.Stale)
		}
	}
	if out := mustAuthctl(t, "keys", "list"); !strings.Contains(out, "stale") {
		t.Errorf("table %q does not say the keys are stale", out)
	}

	out := mustAuthctl(t, "keys", "rewrap")
	if !strings.Contains(out, "Sealed 2 signing key(s)") || !strings.Contains(out, "opens under the first key-encryption key alone") {
		t.Errorf("rewrap said %q, want 2 keys sealed", out)
	}
	after := listed(t)
	for _, k := range after {
		if !k.Trusted || k.Stale {
			t.Errorf("after rewrap, key %s trusted %v stale %v; want trusted and fresh", k.Kid, k.Trusted, k.Stale)
		}
		if b := find(before, k.Kid); b == nil || !b.SignsFrom.Equal(k.SignsFrom) || *b.SignsUntil != *k.SignsUntil || *b.PublishedUntil != *k.PublishedUntil {
			t.Errorf("rewrap changed the schedule of %s: %+v, was %+v", k.Kid, k, b)
		}
	}
	if again := mustAuthctl(t, "keys", "rewrap"); !strings.Contains(again, "Sealed 0") {
		t.Errorf("a second rewrap said %q, want 0 sealed", again)
	}

	// A worker with B alone publishes both keys, and signs.
	issuer := s.issuer(t, kekB)
	if kids := publishedKidsOf(t, issuer.JWKS()); len(kids) != 2 {
		t.Errorf("an issuer with the new KEK alone publishes %v, want both keys", kids)
	}
	t.Setenv("AUTH_KEY_ENCRYPTION_KEY", b64(kekB))
	for _, k := range listed(t) {
		if !k.Trusted || k.Stale {
			t.Errorf("with the new KEK alone, key %s trusted %v stale %v", k.Kid, k.Trusted, k.Stale)
		}
	}

	// A worker with A alone trusts none of them.
	if _, err := tokens.NewIssuer(context.Background(), s.store, tokens.Config{
		Issuer: "https://auth.test", Audience: []string{"api"}, KeyEncryptionKey: kekA,
	}); err == nil || !strings.Contains(err.Error(), "no stored signing key is trusted") {
		t.Errorf("an issuer with the old KEK alone: %v, want it refused for trusting no key", err)
	}
	t.Setenv("AUTH_KEY_ENCRYPTION_KEY", b64(kekA))
	for _, k := range listed(t) {
		if k.Trusted {
			t.Errorf("with the old KEK alone, key %s is trusted", k.Kid)
		}
	}
}

// TestKeysRotateEnqueuesEvent: a key authctl creates is announced through
// the outbox, in the transaction that stores it, for the workers' relays.
func TestKeysRotateEnqueuesEvent(t *testing.T) {
	s := newKeysStore(t)
	topic := testenv.Name(t, "events")
	t.Setenv("AUTH_EVENTS_TOPIC", topic)
	mustAuthctl(t, "keys", "rotate")
	next := listed(t)[1]

	conn, err := pgx.Connect(context.Background(), s.url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(context.Background(), `SELECT headers FROM outbox WHERE topic = $1`, topic)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var types []string
	for rows.Next() {
		var headers []byte
		if err := rows.Scan(&headers); err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(headers, []byte("authworker.SigningKeyRotated")) {
			types = append(types, "SigningKeyRotated")
		}
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if len(types) != 1 {
		t.Errorf("outbox rows of %s: %v, want one SigningKeyRotated (for %s)", topic, types, next.Kid)
	}
}

// TestKeySettingsNameEveryAlgorithm: authctl keys manages the keys of
// every algorithm the workers sign with, so that a rotation covers each.
func TestKeySettingsNameEveryAlgorithm(t *testing.T) {
	t.Setenv("AUTH_KEY_ENCRYPTION_KEY", b64(kekA))
	t.Setenv("AUTH_SIGNING_ALG", "EdDSA")
	t.Setenv("AUTH_SIGNING_ALGS", "RS256")
	t.Setenv("AUTH_CLIENT_SIGNING_ALGS", "orders=ES256")
	s, err := readKeySettings()
	if err != nil {
		t.Fatal(err)
	}
	if s.tokens.Algorithm != "EdDSA" || !slices.Equal(s.tokens.Algorithms, []string{"RS256"}) || s.tokens.ClientAlgorithms["orders"] != "ES256" {
		t.Errorf("algorithms: default %s, others %v, clients %v; want EdDSA, [RS256], orders=ES256",
			s.tokens.Algorithm, s.tokens.Algorithms, s.tokens.ClientAlgorithms)
	}
}
