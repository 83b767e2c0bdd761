package domain

import (
	"context"
	"time"
)

// SigningKey is a key pair that signs access tokens, as stored. The private
// half is sealed (encrypted with the key-encryption key) before it reaches
// storage; storage never sees it in the clear.
type SigningKey struct {
	ID               string // the kid header of tokens it signs
	Algorithm        string // the JWS alg, e.g. "EdDSA"
	PublicKey        []byte // PKIX DER
	SealedPrivateKey []byte // PKCS #8 DER, sealed
	CreatedAt        time.Time
	// SignFrom is when the key starts signing. Until then it is published
	// only, so that verifiers have it before the first token it signs.
	SignFrom time.Time
	// SignUntil is when the key stops signing; zero means not yet decided.
	SignUntil time.Time
	// PublishUntil is when the key leaves the JWKS: after every token it
	// signed has expired. Zero means not yet decided.
	PublishUntil time.Time
}

// Signs reports whether k is the kind of key that may sign at t.
func (k SigningKey) Signs(t time.Time) bool {
	return !t.Before(k.SignFrom) && (k.SignUntil.IsZero() || t.Before(k.SignUntil))
}

// Published reports whether k belongs in the JWKS at t.
func (k SigningKey) Published(t time.Time) bool {
	return k.PublishUntil.IsZero() || t.Before(k.PublishUntil)
}

// SigningKeyRepository stores signing keys, shared by every worker.
type SigningKeyRepository interface {
	// SigningKeys returns every stored key still published at now, oldest
	// first. It returns CodeUnavailable when the store is down.
	SigningKeys(ctx context.Context, now time.Time) ([]SigningKey, error)

	// UpdateSigningKeys serialises key management across workers: holding
	// a lock, it loads the keys still published at now, passes them to
	// update, and stores the keys update returns (inserted when new, replaced
	// by ID otherwise), in one transaction. Two workers starting at once thus
	// cannot both create a first key:
	//
	//	err := keys.UpdateSigningKeys(ctx, now, func(ctx context.Context, ks []domain.SigningKey) ([]domain.SigningKey, error) {
	//		if len(ks) > 0 {
	//			return nil, nil
	//		}
	//		return []domain.SigningKey{newKey}, nil
	//	})
	//
	// The context update gets carries that transaction, never the caller's:
	// what update writes through other repositories of the same store (the
	// outbox) commits with the keys, and key management does not wait for
	// a request's transaction. Keys removed by now (past PublishUntil) are
	// deleted in the same transaction: their private halves serve no one.
	// Workers learn of a change at their next load, or at once when the
	// store can tell them (see the adapter).
	//
	// It returns update's error as is and CodeUnavailable when the store is
	// down.
	UpdateSigningKeys(ctx context.Context, now time.Time, update func(ctx context.Context, keys []SigningKey) ([]SigningKey, error)) error
}

// KeyState is where a signing key is in its lifecycle: next (published, not
// signing yet), current (signing), retired (published, signing no more),
// removed (neither).
type KeyState string

// The states of a signing key.
const (
	KeyNext    KeyState = "next"
	KeyCurrent KeyState = "current"
	KeyRetired KeyState = "retired"
	KeyRemoved KeyState = "removed"
)

// State returns where k is at now.
func (k SigningKey) State(now time.Time) KeyState {
	switch {
	case !k.Published(now):
		return KeyRemoved
	case now.Before(k.SignFrom):
		return KeyNext
	case k.Signs(now):
		return KeyCurrent
	}
	return KeyRetired
}

// KeyPolicy is how signing keys rotate. Each algorithm's keys follow it on
// their own: a key is published PrePublish before it signs, signs for
// Period, and stays published for Retention after it stops.
type KeyPolicy struct {
	// Period is how long a key signs before its successor takes over.
	Period time.Duration
	// PrePublish is how long a key is published before it signs: longer
	// than verifiers may cache the key set, so that none meets a token
	// signed by a key it could not have fetched yet.
	PrePublish time.Duration
	// Retention is how long a key stays published after it stops signing:
	// the lifetime of the tokens it signed, plus clock skew.
	Retention time.Duration
}

// Schedule sets k to sign from signFrom for the policy's period, and to
// stay published for its retention after.
func (p KeyPolicy) Schedule(k *SigningKey, signFrom time.Time) {
	k.SignFrom = signFrom
	k.SignUntil = signFrom.Add(p.Period)
	k.PublishUntil = k.SignUntil.Add(p.Retention)
}

// End sets k to stop signing at t, and to stay published for the
// retention after.
func (p KeyPolicy) End(k *SigningKey, t time.Time) {
	k.SignUntil = t
	k.PublishUntil = t.Add(p.Retention)
}

// Rotation is what one algorithm's keys need: a new key that signs from
// SignFrom, when Create is set (its key material is the caller's to make),
// and stored keys whose schedule changed.
type Rotation struct {
	Create   bool
	SignFrom time.Time
	Changed  []SigningKey
}

// Plan returns what the keys of algorithm alg need at now, given every key
// published then (of any algorithm):
//
//   - none of alg: a first key, signing at once when no key of any
//     algorithm signs (nothing could verify a token yet), else after
//     PrePublish, the other algorithm's key signing meanwhile;
//   - a next key of alg: nothing, it takes over on schedule;
//   - a current key whose end is less than twice PrePublish away: its
//     successor, signing from that end, or, when the workers were late,
//     from PrePublish after now, the current key signing until then;
//   - a retired key and no successor (every worker was down past its
//     end): the retired key signs again until a successor, published now,
//     takes over after PrePublish;
//   - a key stored without an end (by an earlier version): its end,
//     Period after it began.
func (p KeyPolicy) Plan(keys []SigningKey, alg string, now time.Time) Rotation {
	var latest *SigningKey
	anySigns := false
	for i := range keys {
		k := &keys[i]
		anySigns = anySigns || k.Signs(now)
		if k.Algorithm == alg && k.Published(now) && (latest == nil || k.SignFrom.After(latest.SignFrom)) {
			latest = k
		}
	}
	if latest == nil {
		if anySigns {
			return Rotation{Create: true, SignFrom: now.Add(p.PrePublish)}
		}
		return Rotation{Create: true, SignFrom: now}
	}
	if now.Before(latest.SignFrom) {
		return Rotation{} // the next key
	}
	var r Rotation
	k := *latest
	if k.SignUntil.IsZero() {
		p.End(&k, k.SignFrom.Add(p.Period))
		r.Changed = []SigningKey{k}
	}
	if now.Before(k.SignUntil.Add(-2 * p.PrePublish)) {
		return r
	}
	r.Create, r.SignFrom = true, k.SignUntil
	if earliest := now.Add(p.PrePublish); r.SignFrom.Before(earliest) {
		r.SignFrom = earliest
		p.End(&k, earliest)
		r.Changed = []SigningKey{k}
	}
	return r
}
