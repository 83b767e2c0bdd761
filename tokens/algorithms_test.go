package tokens_test

import (
	"context"
	"encoding/json"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/inmem"
	"github.com/authworker/authworker/tokens"
)

// issueFor signs a token for clientID and returns its alg header and kid.
func issueFor(t *testing.T, i *tokens.Issuer, clientID string) (alg, kid, token string) {
	t.Helper()
	c := claims
	c.ClientID = clientID
	at, err := i.IssueAccessToken(context.Background(), c)
	if err != nil {
		t.Fatal(err)
	}
	h := decodeSegment(t, at.Token, 0)
	alg, _ = h["alg"].(string)
	kid, _ = h["kid"].(string)
	return alg, kid, at.Token
}

// esWithEdDSAClient is rotationConfig signing ES256 by default and EdDSA
// for the client billing-go.
func esWithEdDSAClient(clock *manualClock) tokens.Config {
	cfg := rotationConfig(clock)
	cfg.Algorithm = tokens.ES256
	cfg.ClientAlgorithms = map[string]string{"billing-go": tokens.EdDSA}
	return cfg
}

// publishedAlgs returns kid → alg of a JWKS, failing on a key without alg.
func publishedAlgs(t *testing.T, jwks []byte) map[string]string {
	t.Helper()
	var set struct {
		Keys []struct {
			Kid string `json:"kid"`
			Alg string `json:"alg"`
		} `json:"keys"`
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		t.Fatal(err)
	}
	algs := map[string]string{}
	for _, k := range set.Keys {
		if k.Alg == "" {
			t.Errorf("JWKS key %s has no alg", k.Kid)
		}
		algs[k.Kid] = k.Alg
	}
	return algs
}

// TestSeveralAlgorithmsSign: every enabled algorithm has a current key,
// published with its alg; a client gets tokens of its configured
// algorithm, every other client the default's; and each verifies.
func TestSeveralAlgorithmsSign(t *testing.T) {
	clock := newManualClock()
	cfg := rotationConfig(clock)
	cfg.Algorithm = tokens.ES256
	cfg.Algorithms = []string{tokens.EdDSA}
	cfg.ClientAlgorithms = map[string]string{"billing-go": tokens.EdDSA, "orders-spring": tokens.RS256}
	i := startIssuer(t, inmem.NewSigningKeyRepository(), cfg)

	published := publishedAlgs(t, i.JWKS())
	var algs []string
	for _, a := range published {
		algs = append(algs, a)
	}
	slices.Sort(algs)
	if want := []string{tokens.ES256, tokens.EdDSA, tokens.RS256}; !slices.Equal(algs, want) {
		t.Fatalf("JWKS algorithms = %v, want one key of each of %v", algs, want)
	}
	tests := []struct {
		client, alg string
	}{
		{"web", tokens.ES256}, // no choice of its own: the default
		{"billing-go", tokens.EdDSA},
		{"orders-spring", tokens.RS256},
		{"Billing-go", tokens.ES256}, // client ids are matched exactly
	}
	for _, tt := range tests {
		t.Run(tt.client, func(t *testing.T) {
			alg, kid, token := issueFor(t, i, tt.client)
			if alg != tt.alg {
				t.Errorf("signed with %s, want %s", alg, tt.alg)
			}
			if published[kid] != alg {
				t.Errorf("kid %s is published as %q, the token says %s", kid, published[kid], alg)
			}
			got, err := i.VerifyAccessToken(token)
			if err != nil {
				t.Fatalf("the issuer refuses its own %s token: %v", alg, err)
			}
			if got.ClientID != tt.client {
				t.Errorf("client_id = %q, want %q", got.ClientID, tt.client)
			}
		})
	}
}

// TestEnabledAlgorithmGoesThroughNext: an algorithm enabled on a running
// deployment (a client given one) is published first; until its key may
// sign, that client's tokens are signed by the default algorithm, so no
// verifier meets a kid it could not have fetched.
func TestEnabledAlgorithmGoesThroughNext(t *testing.T) {
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	cfg := rotationConfig(clock)
	cfg.Algorithm = tokens.ES256
	startIssuer(t, store, cfg)

	cfg.ClientAlgorithms = map[string]string{"billing-go": tokens.EdDSA}
	i := startIssuer(t, store, cfg)
	published := publishedAlgs(t, i.JWKS())
	if len(published) != 2 {
		t.Fatalf("JWKS = %v, want the ES256 key and the new EdDSA one", published)
	}
	if alg, _, _ := issueFor(t, i, "billing-go"); alg != tokens.ES256 {
		t.Errorf("the new algorithm's key signed (%s) before its pre-publication ended, want ES256 meanwhile", alg)
	}
	clock.Set(t0.Add(time.Hour))
	if alg, _, _ := issueFor(t, i, "billing-go"); alg != tokens.EdDSA {
		t.Errorf("after the pre-publication the client's tokens are %s, want EdDSA", alg)
	}
	if alg, _, _ := issueFor(t, i, "web"); alg != tokens.ES256 {
		t.Errorf("the default changed to %s for other clients, want ES256", alg)
	}
}

// TestEachAlgorithmRotates: every enabled algorithm's keys follow the
// same next → current → retired path on the same period.
func TestEachAlgorithmRotates(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	cfg := esWithEdDSAClient(clock)
	i := startIssuer(t, store, cfg)
	_, firstES, _ := issueFor(t, i, "web")
	_, firstEd, _ := issueFor(t, i, "billing-go")

	clock.Set(t0.Add(8 * time.Hour)) // both successors are due
	if err := i.Maintain(ctx); err != nil {
		t.Fatal(err)
	}
	states := storedStates(t, store, clock.Now())
	next := map[string]int{}
	for kid, st := range states {
		if st == domain.KeyNext {
			next[publishedAlgs(t, i.JWKS())[kid]]++
		}
	}
	if next[tokens.ES256] != 1 || next[tokens.EdDSA] != 1 {
		t.Fatalf("next keys by algorithm = %v, want one each", next)
	}
	clock.Set(t0.Add(10 * time.Hour))
	for client, first := range map[string]string{"web": firstES, "billing-go": firstEd} {
		if _, kid, _ := issueFor(t, i, client); kid == first || states[kid] != domain.KeyNext {
			t.Errorf("%s: signed with %s at the successor's start, want its successor", client, kid)
		}
	}
}

// TestAlgorithmSettingsValidate: a client may only be given an algorithm
// the issuer can sign with; the default must be one.
func TestAlgorithmSettingsValidate(t *testing.T) {
	tests := []struct {
		name string
		edit func(*tokens.Config)
		want string // in the error
	}{
		{"UnknownDefault", func(c *tokens.Config) { c.Algorithm = "HS256" }, "HS256"},
		{"UnknownEnabled", func(c *tokens.Config) { c.Algorithms = []string{"none"} }, "none"},
		{"UnknownForClient", func(c *tokens.Config) { c.ClientAlgorithms = map[string]string{"web": "PS256"} }, "PS256"},
		{"EmptyClientID", func(c *tokens.Config) { c.ClientAlgorithms = map[string]string{"": tokens.EdDSA} }, "client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := rotationConfig(newManualClock())
			tt.edit(&cfg)
			_, err := tokens.NewIssuer(context.Background(), inmem.NewSigningKeyRepository(), cfg)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewIssuer = %v, want an error naming %q", err, tt.want)
			}
		})
	}
}

// TestDefaultAlgorithmIsES256: the default is the algorithm every
// mainstream verifier accepts from configuration alone (README, "Verifying
// tokens").
func TestDefaultAlgorithmIsES256(t *testing.T) {
	cfg := rotationConfig(newManualClock())
	cfg.Algorithm = ""
	i := startIssuer(t, inmem.NewSigningKeyRepository(), cfg)
	if alg, _, _ := issueFor(t, i, "web"); alg != tokens.ES256 {
		t.Errorf("default algorithm = %s, want ES256", alg)
	}
	if algs := publishedAlgs(t, i.JWKS()); len(algs) != 1 {
		t.Errorf("JWKS = %v, want the ES256 key alone", algs)
	}
}

// TestEmergencyRotationCoversEveryAlgorithm: an emergency rotation
// replaces the current key of every enabled algorithm at once, and takes
// the old ones out of the JWKS.
func TestEmergencyRotationCoversEveryAlgorithm(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	store := inmem.NewSigningKeyRepository()
	cfg := esWithEdDSAClient(clock)
	i := startIssuer(t, store, cfg)
	_, oldES, _ := issueFor(t, i, "web")
	_, oldEd, _ := issueFor(t, i, "billing-go")

	m, err := tokens.NewManager(store, cfg)
	must(t, err)
	created, err := m.Rotate(ctx, tokens.Emergency)
	must(t, err)
	algs := map[string]string{}
	for _, k := range created {
		algs[k.Algorithm] = k.ID
	}
	if len(created) != 2 || algs[tokens.ES256] == "" || algs[tokens.EdDSA] == "" {
		t.Fatalf("created %v, want one ES256 and one EdDSA key", created)
	}
	must(t, i.Reload(ctx))
	for client, alg := range map[string]string{"web": tokens.ES256, "billing-go": tokens.EdDSA} {
		if _, kid, _ := issueFor(t, i, client); kid != algs[alg] {
			t.Errorf("%s: signs with %s, want the new %s key %s", client, kid, alg, algs[alg])
		}
	}
	published := publishedAlgs(t, i.JWKS())
	for _, old := range []string{oldES, oldEd} {
		if _, ok := published[old]; ok {
			t.Errorf("old key %s is still published after an emergency rotation", old)
		}
	}
}

// TestEmergencyRotationCoversKeysBeyondItsSettings: an operator whose
// settings name fewer algorithms than the workers sign with (authctl run
// from a shell without AUTH_CLIENT_SIGNING_ALGS) still replaces every key
// that signs, and takes every old key out of the JWKS: a leaked key of an
// algorithm it was not told of must not keep signing.
func TestEmergencyRotationCoversKeysBeyondItsSettings(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	store := inmem.NewSigningKeyRepository()
	workers := esWithEdDSAClient(clock)
	i := startIssuer(t, store, workers)
	_, oldEd, _ := issueFor(t, i, "billing-go")

	operator := rotationConfig(clock)
	operator.Algorithm = tokens.ES256 // knows nothing of EdDSA
	m, err := tokens.NewManager(store, operator)
	must(t, err)
	created, err := m.Rotate(ctx, tokens.Emergency)
	must(t, err)
	algs := map[string]bool{}
	for _, k := range created {
		algs[k.Algorithm] = true
	}
	if !algs[tokens.ES256] || !algs[tokens.EdDSA] || len(created) != 2 {
		t.Fatalf("created %v, want a new ES256 and a new EdDSA key", created)
	}
	must(t, i.Reload(ctx))
	if _, kid, _ := issueFor(t, i, "billing-go"); kid == oldEd {
		t.Error("the EdDSA key the operator did not name still signs after an emergency rotation")
	}
	if _, ok := publishedAlgs(t, i.JWKS())[oldEd]; ok {
		t.Error("the old EdDSA key is still published after an emergency rotation")
	}
}

// TestUnnamedAlgorithmKeepsTheOneSigning: a deployment that names no
// algorithm keeps signing with the one its current key has (an upgrade
// from an EdDSA default changes nothing its verifiers see, some of which
// may accept EdDSA alone); a new deployment gets ES256.
func TestUnnamedAlgorithmKeepsTheOneSigning(t *testing.T) {
	clock := newManualClock()
	store := inmem.NewSigningKeyRepository()
	before := rotationConfig(clock) // EdDSA, named
	startIssuer(t, store, before)

	cfg := rotationConfig(clock)
	cfg.Algorithm = ""
	i := startIssuer(t, store, cfg)
	if alg, _, _ := issueFor(t, i, "web"); alg != tokens.EdDSA {
		t.Errorf("an issuer naming no algorithm signs with %s, want EdDSA, the algorithm of the key signing", alg)
	}
	if algs := publishedAlgs(t, i.JWKS()); len(algs) != 1 {
		t.Errorf("JWKS = %v, want the EdDSA key alone: no ES256 key is made", algs)
	}
	if got, err := tokens.InheritedAlgorithm(context.Background(), inmem.NewSigningKeyRepository(), clock.Now(), nil); err != nil || got != tokens.ES256 {
		t.Errorf("InheritedAlgorithm of an empty store = %s, %v; want ES256", got, err)
	}

	// A client given RS256 later: its key, newer, is not the default's.
	cfg.ClientAlgorithms = map[string]string{"orders-spring": tokens.RS256}
	startIssuer(t, store, cfg)            // publishes the RS256 key
	clock.Set(clock.Now().Add(time.Hour)) // which signs now
	i = startIssuer(t, store, cfg)
	if alg, _, _ := issueFor(t, i, "web"); alg != tokens.EdDSA {
		t.Errorf("with a client's RS256 key signing, other clients get %s, want EdDSA still", alg)
	}
	if alg, _, _ := issueFor(t, i, "orders-spring"); alg != tokens.RS256 {
		t.Errorf("the RS256 client gets %s", alg)
	}
}

// TestInheritedAlgorithm: which algorithm a deployment naming none signs
// with, by what signs now.
func TestInheritedAlgorithm(t *testing.T) {
	clock := newManualClock()
	tests := []struct {
		name    string
		signing []string // algorithms of issuers started on the store, in order
		others  []string
		want    string
	}{
		{"NewDeployment", nil, nil, tokens.ES256},
		{"EdDSABefore", []string{tokens.EdDSA}, nil, tokens.EdDSA},
		{"EdDSAWithAClientsRS256", []string{tokens.EdDSA, tokens.RS256}, []string{tokens.RS256}, tokens.EdDSA},
		{"ES256WithAClientsEdDSA", []string{tokens.EdDSA, tokens.ES256}, []string{tokens.EdDSA}, tokens.ES256},
		{"OnlyClientAlgorithmsSign", []string{tokens.EdDSA}, []string{tokens.EdDSA}, tokens.EdDSA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store := inmem.NewSigningKeyRepository()
			for _, alg := range tt.signing {
				cfg := rotationConfig(clock)
				cfg.Algorithm = alg
				startIssuer(t, store, cfg) // the first key of each signs at once
			}
			got, err := tokens.InheritedAlgorithm(context.Background(), store, clock.Now().Add(time.Hour), tt.others)
			if err != nil || got != tt.want {
				t.Errorf("InheritedAlgorithm = %s, %v; want %s", got, err, tt.want)
			}
		})
	}
}

// TestClientKeepsItsAlgorithmWhenLate: when a client's algorithm has no
// key left whose window holds now (every worker that signs with it was
// cut off from the store past its key's end), that client's tokens stay
// of its algorithm, signed by its last key, still published, rather than
// of another its verifiers may refuse.
func TestClientKeepsItsAlgorithmWhenLate(t *testing.T) {
	ctx := context.Background()
	clock := newManualClock()
	t0 := clock.Now()
	store := inmem.NewSigningKeyRepository()
	cfg := esWithEdDSAClient(clock)
	late := startIssuer(t, store, cfg)
	_, firstEd, _ := issueFor(t, late, "billing-go")

	esOnly := rotationConfig(clock)
	esOnly.Algorithm = tokens.ES256
	other := startIssuer(t, store, esOnly)
	clock.Set(t0.Add(8 * time.Hour))
	must(t, other.Maintain(ctx)) // an ES256 successor; no EdDSA one

	clock.Set(t0.Add(10*time.Hour + 5*time.Minute)) // past the EdDSA key's end
	must(t, late.Reload(ctx))
	if alg, kid, _ := issueFor(t, late, "billing-go"); alg != tokens.EdDSA || kid != firstEd {
		t.Errorf("billing-go got a %s token of %s, want EdDSA from its last key %s", alg, kid, firstEd)
	}
}
