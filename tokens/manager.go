package tokens

import (
	"context"
	"crypto"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/authworker/authworker/domain"
	"github.com/authworker/authworker/seal"
)

// ClockSkew is how far the clocks of workers and verifiers may differ. A
// retired key stays published this much longer than the tokens it signed
// live.
const ClockSkew = time.Minute

// Manager keeps the stored signing keys: it rotates them by the policy of
// its Config, and carries out operators' commands. Every worker's Issuer
// runs one; `authctl keys` runs another against the same store. Workers
// agree through the store alone: every change is made under the store's
// lock, from the keys it holds then, and a key's schedule (when it signs,
// until when it is published) is fixed when it is stored, so that workers
// that have loaded it switch to it at the same instant.
//
// Every stored row is authenticated: its private half is sealed under the
// key-encryption key with the row's kid, algorithm and schedule as
// associated data, so a row whose schedule was edited in the store (a
// retired key made to sign again, a removed one kept published) does not
// open, and is neither published nor used.
type Manager struct {
	store  domain.SigningKeyRepository
	box    *seal.Box
	policy domain.KeyPolicy
	cfg    Config
}

// NewManager returns a Manager of the keys in store. Of cfg it uses the
// algorithm, the key-encryption keys, the rotation settings and the access
// token lifetime.
func NewManager(store domain.SigningKeyRepository, cfg Config) (*Manager, error) {
	cfg.setDefaults()
	if err := cfg.validateKeys(); err != nil {
		return nil, err
	}
	box, err := seal.NewBox(cfg.KeyEncryptionKey, "signing keys", cfg.OlderKeyEncryptionKeys...)
	if err != nil {
		return nil, err
	}
	return &Manager{store: store, box: box, policy: cfg.policy(), cfg: cfg}, nil
}

// policy is the rotation policy of c: a key stays published after it stops
// signing until every token it signed has expired.
func (c Config) policy() domain.KeyPolicy {
	return domain.KeyPolicy{Period: c.RotationPeriod, PrePublish: c.PrePublish, Retention: c.AccessTTL + ClockSkew}
}

// keyAD is the associated data a row's private half is sealed with: the
// row's kid, algorithm and schedule, each length-prefixed or fixed-size,
// times in microseconds (the store's precision), zero for "not decided".
func keyAD(k domain.SigningKey) []byte {
	ad := make([]byte, 0, 64+len(k.ID)+len(k.Algorithm))
	ad = append(ad, "authworker signing key v2"...)
	for _, s := range []string{k.ID, k.Algorithm} {
		ad = binary.BigEndian.AppendUint32(ad, uint32(len(s)))
		ad = append(ad, s...)
	}
	for _, t := range []time.Time{k.SignFrom, k.SignUntil, k.PublishUntil} {
		var us int64
		if !t.IsZero() {
			us = t.UnixMicro()
		}
		ad = binary.BigEndian.AppendUint64(ad, uint64(us))
	}
	return ad
}

// open returns the private half of k, and whether it is sealed under the
// first key-encryption key. A row stored by an earlier version was sealed
// with its kid alone and has no end; it opens that way, and Maintain
// seals it again with its schedule.
func (m *Manager) open(k domain.SigningKey) (der []byte, fresh, legacy bool, err error) {
	der, fresh, err = m.box.OpenFresh(k.SealedPrivateKey, keyAD(k))
	if err == nil {
		return der, fresh, false, nil
	}
	if k.SignUntil.IsZero() && k.PublishUntil.IsZero() {
		if der, fresh, err = m.box.OpenFresh(k.SealedPrivateKey, []byte(k.ID)); err == nil {
			return der, fresh, true, nil
		}
	}
	return nil, false, false, errors.New("private half does not open under the key-encryption keys for this row's kid, algorithm and schedule")
}

// trustedKey is a stored key that passed the checks of trust.
type trustedKey struct {
	row       domain.SigningKey
	jwk       JWK
	verifying verifyingKey
	signing   *privateKey
	fresh     bool // sealed under the first key-encryption key
	legacy    bool // sealed without its schedule
}

// trust returns k if it is a key a worker created, or the reason to think
// it is not. Anyone who can write to the store can write a row; only a
// holder of the key-encryption key can seal its private half. So the
// sealed half must open under our KEKs, bound to the row's kid, algorithm
// and schedule, and everything else in the row must follow from it: the
// private key parses and is of the row's algorithm, the public half is its
// public key, and the kid is that key's RFC 7638 thumbprint. The reason
// never includes key material.
func (m *Manager) trust(k domain.SigningKey) (trustedKey, error) {
	method, err := signingMethod(k.Algorithm)
	if err != nil {
		return trustedKey{}, err
	}
	der, fresh, legacy, err := m.open(k)
	if err != nil {
		return trustedKey{}, err
	}
	defer clear(der)
	parsed, err := x509.ParsePKCS8PrivateKey(der)
	if err != nil {
		return trustedKey{}, errors.New("private half is not a PKCS #8 key")
	}
	signer, ok := parsed.(crypto.Signer)
	if !ok || !keyOfAlgorithm(signer, k.Algorithm) {
		return trustedKey{}, fmt.Errorf("private half is not a key of %s", k.Algorithm)
	}
	pub, err := x509.ParsePKIXPublicKey(k.PublicKey)
	if err != nil {
		return trustedKey{}, errors.New("public half is not a PKIX key")
	}
	if own, ok := signer.Public().(interface{ Equal(crypto.PublicKey) bool }); !ok || !own.Equal(pub) {
		return trustedKey{}, errors.New("public half is not the private half's")
	}
	jwk, err := publicJWK(pub, k.Algorithm)
	if err != nil {
		return trustedKey{}, err
	}
	if jwk.Kid != k.ID {
		return trustedKey{}, errors.New("kid is not the thumbprint of the public half")
	}
	return trustedKey{
		row:       k,
		jwk:       jwk,
		verifying: verifyingKey{method: method, key: pub},
		signing:   &privateKey{kid: k.ID, method: method, key: signer, from: k.SignFrom, until: k.SignUntil},
		fresh:     fresh,
		legacy:    legacy,
	}, nil
}

// trusted returns the keys of stored that pass trust, and logs the others.
func (m *Manager) trusted(stored []domain.SigningKey) []trustedKey {
	keys := make([]trustedKey, 0, len(stored))
	seen := make(map[string]bool, len(stored))
	for _, k := range stored {
		if seen[k.ID] {
			// The store keys rows by kid; a set with one kid twice would
			// leave verifiers to pick one.
			continue
		}
		t, err := m.trust(k)
		if err != nil {
			m.cfg.Logger.Error("signing key not trusted, not published", "kid", k.ID, "alg", k.Algorithm, "reason", err)
			continue
		}
		seen[k.ID] = true
		keys = append(keys, t)
	}
	return keys
}

// rows returns the stored rows of keys.
func rows(keys []trustedKey) []domain.SigningKey {
	rs := make([]domain.SigningKey, len(keys))
	for i, k := range keys {
		rs[i] = k.row
	}
	return rs
}

// reseal seals k's private half, opened from its stored row, for k's
// schedule under the first key-encryption key.
func (m *Manager) reseal(stored trustedKey, k domain.SigningKey) (domain.SigningKey, error) {
	der, _, _, err := m.open(stored.row)
	if err != nil {
		return domain.SigningKey{}, err
	}
	defer clear(der)
	k.SealedPrivateKey = m.box.Seal(der, keyAD(k))
	return k, nil
}

// generated is a key drawn for an algorithm, not scheduled or stored yet.
type generated struct {
	row domain.SigningKey // without a schedule or sealed half
	der []byte            // PKCS #8
}

// generate draws a key pair for alg.
func (m *Manager) generate(alg string) (generated, error) {
	priv, err := generateKey(alg, m.cfg.Random)
	if err != nil {
		return generated{}, fmt.Errorf("generate %s key: %w", alg, err)
	}
	jwk, err := publicJWK(priv.Public(), alg)
	if err != nil {
		return generated{}, err
	}
	pub, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		return generated{}, fmt.Errorf("marshal public key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		return generated{}, fmt.Errorf("marshal private key: %w", err)
	}
	return generated{row: domain.SigningKey{ID: jwk.Kid, Algorithm: alg, PublicKey: pub}, der: der}, nil
}

// create schedules g to sign from signFrom for the policy's period, seals
// it, and reports it to the OnKeyCreated hook in the store's transaction.
func (m *Manager) create(ctx context.Context, g generated, now, signFrom time.Time) (domain.SigningKey, error) {
	k := g.row
	k.CreatedAt = now
	m.policy.Schedule(&k, signFrom)
	k.SealedPrivateKey = m.box.Seal(g.der, keyAD(k))
	clear(g.der)
	if m.cfg.OnKeyCreated != nil {
		if err := m.cfg.OnKeyCreated(ctx, k); err != nil {
			return domain.SigningKey{}, err
		}
	}
	m.cfg.Logger.Info("created signing key", "kid", k.ID, "alg", k.Algorithm, "signs_from", k.SignFrom, "signs_until", k.SignUntil)
	return k, nil
}

// change is what the keys need: new keys, by algorithm, signing from a
// time, and stored keys with a new schedule or sealed half.
type change struct {
	create  map[string]time.Time
	changed []domain.SigningKey
}

func (c change) empty() bool { return len(c.create) == 0 && len(c.changed) == 0 }

// plan returns what the policy asks of keys at now:
//
//   - each configured algorithm's rotation (domain.KeyPolicy.Plan);
//   - a key sealed without its schedule (by an earlier version) is sealed
//     again with it, and given an end if it has none.
//
// Keys of an algorithm no longer configured are left to their schedule:
// workers prefer a configured algorithm's key as soon as one signs, and
// while an algorithm changes, workers configured for either sign with the
// one that signs at the time; none of them fights the others' schedules.
func (m *Manager) plan(keys []trustedKey, now time.Time) change {
	c := change{create: map[string]time.Time{}}
	rs := rows(keys)
	edited := map[string]domain.SigningKey{}
	for _, alg := range m.cfg.algorithms() {
		r := m.policy.Plan(rs, alg, now)
		if r.Create {
			c.create[alg] = r.SignFrom
		}
		for _, k := range r.Changed {
			edited[k.ID] = k
		}
	}
	for _, k := range keys {
		if _, ok := edited[k.row.ID]; !k.legacy || ok {
			continue
		}
		r := k.row
		if r.SignUntil.IsZero() { // of an algorithm no longer configured
			m.policy.End(&r, maxTime(r.SignFrom.Add(m.policy.Period), now))
		}
		edited[r.ID] = r
	}
	for _, k := range rs { // in the store's order
		if e, ok := edited[k.ID]; ok {
			c.changed = append(c.changed, e)
		}
	}
	return c
}

func maxTime(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}

// Maintain carries out what the rotation policy asks of the keys now:
// their successors, their ends, their sealing. It reports whether it
// changed any. It reads the keys first, and takes the store's lock only
// when there is work; a key it needs is generated before it takes the lock
// (an RSA-3072 key takes up to seconds), and the work is planned again
// under the lock, so that of workers doing it together, one does it.
func (m *Manager) Maintain(ctx context.Context) (changed bool, err error) {
	stored, err := m.store.SigningKeys(ctx, m.now())
	if err != nil {
		return false, err
	}
	trusted := m.trusted(stored)
	if len(trusted) == 0 && len(stored) > 0 {
		// Of a misconfigured worker or operator (every key would look
		// forged to it) or a forger's: a key of its own would split the
		// workers.
		return false, errNoneTrusted
	}
	if m.plan(trusted, m.now()).empty() {
		return false, nil
	}
	// What the first plan would create; a plan under the lock that needs
	// a key not drawn here leaves it to the next run.
	drawn := map[string]generated{}
	for alg := range m.plan(trusted, m.now()).create {
		g, err := m.generate(alg)
		if err != nil {
			return false, err
		}
		drawn[alg] = g
	}
	defer func() {
		for _, g := range drawn {
			clear(g.der)
		}
	}()
	err = m.store.UpdateSigningKeys(ctx, m.now(), func(ctx context.Context, stored []domain.SigningKey) ([]domain.SigningKey, error) {
		// Read the clock again: a worker that stored keys while this one
		// generated read its clock later.
		now := m.now()
		keys := m.trusted(stored)
		c := m.plan(keys, now)
		out, err := m.apply(keys, c.changed)
		if err != nil {
			return nil, err
		}
		for alg, signFrom := range c.create {
			g, ok := drawn[alg]
			if !ok {
				continue
			}
			delete(drawn, alg)
			k, err := m.create(ctx, g, now, signFrom)
			if err != nil {
				return nil, err
			}
			out = append(out, k)
		}
		changed = len(out) > 0
		return out, nil
	})
	return changed, err
}

// apply seals the edited keys for their new schedules.
func (m *Manager) apply(keys []trustedKey, edited []domain.SigningKey) ([]domain.SigningKey, error) {
	out := make([]domain.SigningKey, 0, len(edited))
	for _, e := range edited {
		i := slices.IndexFunc(keys, func(k trustedKey) bool { return k.row.ID == e.ID })
		if i < 0 {
			return nil, fmt.Errorf("signing key %s is not among the trusted keys", e.ID)
		}
		k, err := m.reseal(keys[i], e)
		if err != nil {
			return nil, err
		}
		out = append(out, k)
		if e.SignUntil != keys[i].row.SignUntil || e.PublishUntil != keys[i].row.PublishUntil || e.SignFrom != keys[i].row.SignFrom {
			m.cfg.Logger.Info("rescheduled signing key", "kid", e.ID, "alg", e.Algorithm,
				"signs_from", e.SignFrom, "signs_until", e.SignUntil, "published_until", e.PublishUntil)
		}
	}
	return out, nil
}

// privateKey is a trusted key's private half, and when it signs.
type privateKey struct {
	kid         string
	method      jwt.SigningMethod
	key         crypto.Signer
	from, until time.Time
}

// signs reports whether k may sign at t.
func (k *privateKey) signs(t time.Time) bool {
	return !t.Before(k.from) && (k.until.IsZero() || t.Before(k.until))
}

// now reads the clock to the millisecond: keys' schedules are kept to
// that precision, the precision of the events that announce them.
func (m *Manager) now() time.Time { return m.cfg.Now().Truncate(time.Millisecond) }
