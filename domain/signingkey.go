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
	//	err := keys.UpdateSigningKeys(ctx, now, func(ks []domain.SigningKey) ([]domain.SigningKey, error) {
	//		if len(ks) > 0 {
	//			return nil, nil
	//		}
	//		return []domain.SigningKey{newKey}, nil
	//	})
	//
	// It returns update's error as is and CodeUnavailable when the store is
	// down.
	UpdateSigningKeys(ctx context.Context, now time.Time, update func([]SigningKey) ([]SigningKey, error)) error
}
