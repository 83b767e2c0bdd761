package tokens

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/authworker/authworker/domain"
)

// KeyStatus is a stored key as an operator sees it: its row without the
// private half, where it is in its lifecycle, and whether workers trust it.
type KeyStatus struct {
	ID           string
	Algorithm    string
	State        domain.KeyState
	CreatedAt    time.Time
	SignFrom     time.Time
	SignUntil    time.Time // zero: not decided (a row of an earlier version)
	PublishUntil time.Time
	// Untrusted is why workers neither publish nor use the key; empty for
	// a trusted one.
	Untrusted string
	// Stale reports a trusted key sealed under an older key-encryption
	// key: Rewrap seals it under the first.
	Stale bool
}

// List returns every stored key still published, oldest first.
func (m *Manager) List(ctx context.Context) ([]KeyStatus, error) {
	now := m.now()
	stored, err := m.store.SigningKeys(ctx, now)
	if err != nil {
		return nil, err
	}
	out := make([]KeyStatus, 0, len(stored))
	for _, k := range stored {
		s := KeyStatus{
			ID: k.ID, Algorithm: k.Algorithm, State: k.State(now), CreatedAt: k.CreatedAt,
			SignFrom: k.SignFrom, SignUntil: k.SignUntil, PublishUntil: k.PublishUntil,
		}
		if t, err := m.trust(k); err != nil {
			s.Untrusted = err.Error()
		} else {
			s.Stale = !t.fresh
		}
		out = append(out, s)
	}
	return out, nil
}

// Rotation modes of Rotate.
type RotateMode int

const (
	// Scheduled publishes a successor for each configured algorithm now,
	// which signs after the pre-publication window; the current key signs
	// until then and stays published until its tokens have expired. No
	// verifier notices.
	Scheduled RotateMode = iota
	// Emergency is for a key that may have leaked: a new key of each
	// algorithm in use signs at once, and every other key leaves the JWKS
	// at once, so that the tokens they signed (and any forged with
	// them) stop verifying: at the workers as soon as they reload (they
	// are notified), at remote verifiers when they next fetch the JWKS
	// (at the latest after its max-age; at once for those that fetch on
	// an unknown kid and meet a new token). Holders of such tokens get
	// new ones by refreshing their sessions.
	Emergency
)

// Rotate rotates the keys of every configured algorithm now, and returns
// the keys it created. A scheduled rotation when a successor is already
// published creates none, and moves nothing. An emergency rotation also
// covers what the store holds beyond the configured algorithms (as when
// the operator's settings name fewer than the workers'): every algorithm
// with a key that signs gets a new key, and every other key leaves the
// JWKS, so that no leaked key signs on for want of a setting.
func (m *Manager) Rotate(ctx context.Context, mode RotateMode) ([]KeyStatus, error) {
	drawn := map[string]generated{}
	defer func() {
		for _, g := range drawn {
			clear(g.der)
		}
	}()
	draw := func(algs []string) error {
		for _, alg := range algs {
			if _, ok := drawn[alg]; ok {
				continue
			}
			g, err := m.generate(alg)
			if err != nil {
				return err
			}
			drawn[alg] = g
		}
		return nil
	}
	if err := draw(m.cfg.algorithms()); err != nil {
		return nil, err
	}
	for {
		var created []domain.SigningKey
		var algs []string
		err := m.store.UpdateSigningKeys(ctx, m.now(), func(ctx context.Context, stored []domain.SigningKey) ([]domain.SigningKey, error) {
			now := m.now()
			keys := m.trusted(stored)
			if len(keys) == 0 && len(stored) > 0 {
				// As in Maintain: keys sealed under KEKs the workers do not
				// have would split them, and the keys they trust would stay.
				return nil, errNoneTrusted
			}
			created = nil
			algs = m.cfg.algorithms()
			if mode == Emergency {
				for _, k := range keys {
					if k.row.Signs(now) && !slices.Contains(algs, k.row.Algorithm) {
						algs = append(algs, k.row.Algorithm)
					}
				}
				if slices.ContainsFunc(algs, func(a string) bool { _, ok := drawn[a]; return !ok }) {
					return nil, errNeedKey
				}
			}
			var edited []domain.SigningKey
			for _, alg := range algs {
				signFrom := now
				if mode == Scheduled {
					if next := slices.ContainsFunc(keys, func(k trustedKey) bool {
						return k.row.Algorithm == alg && k.row.State(now) == domain.KeyNext
					}); next {
						continue
					}
					signFrom = now.Add(m.policy.PrePublish)
				}
				for _, k := range keys {
					r := k.row
					if r.Algorithm != alg || mode == Emergency {
						continue
					}
					if r.Signs(now) {
						m.policy.End(&r, signFrom)
						edited = append(edited, r)
					}
				}
				k, err := m.create(ctx, drawn[alg], now, signFrom)
				if err != nil {
					return nil, err
				}
				created = append(created, k)
			}
			if mode == Emergency {
				for _, k := range keys {
					r := k.row
					r.SignUntil, r.PublishUntil = minTime(r.SignUntil, now), now
					edited = append(edited, r)
				}
			}
			out, err := m.apply(keys, edited)
			if err != nil {
				return nil, err
			}
			return append(out, created...), nil
		})
		if errors.Is(err, errNeedKey) {
			// Generate outside the lock, and start again.
			if err := draw(algs); err != nil {
				return nil, err
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		return m.statuses(created), nil
	}
}

// minTime returns the earlier of a and b, zero meaning "not decided"
// (later than any time).
func minTime(a, b time.Time) time.Time {
	if a.IsZero() || b.Before(a) {
		return b
	}
	return a
}

// ErrNoSuchKey is the error of Retire for a kid no published key has.
var ErrNoSuchKey = errors.New("no published signing key has this kid")

// Retire stops the key kid signing now. When it was the current key of a
// configured algorithm, its successor signs at once: the next key if one
// is published (verifiers may have it already), else a new one (verifiers
// fetch it when they meet its first token). The retired key stays
// published until its tokens have expired; with remove, it leaves the
// JWKS at once, and its tokens stop verifying as an emergency rotation's
// do. It returns the key it created, if any.
func (m *Manager) Retire(ctx context.Context, kid string, remove bool) ([]KeyStatus, error) {
	var g *generated
	defer func() {
		if g != nil {
			clear(g.der)
		}
	}()
	for {
		var created []domain.SigningKey
		needKey := ""
		err := m.store.UpdateSigningKeys(ctx, m.now(), func(ctx context.Context, stored []domain.SigningKey) ([]domain.SigningKey, error) {
			now := m.now()
			keys := m.trusted(stored)
			i := slices.IndexFunc(keys, func(k trustedKey) bool { return k.row.ID == kid })
			if i < 0 {
				return nil, fmt.Errorf("%w: %s", ErrNoSuchKey, kid)
			}
			r := keys[i].row
			wasCurrent := r.Signs(now)
			if now.Before(r.SignFrom) {
				r.SignFrom = now // a next key retired before it signed
			}
			r.SignUntil = minTime(r.SignUntil, now)
			r.PublishUntil = r.SignUntil.Add(m.policy.Retention)
			if remove {
				r.PublishUntil = now
			}
			edited := []domain.SigningKey{r}
			if wasCurrent && slices.Contains(m.cfg.algorithms(), r.Algorithm) {
				if n := slices.IndexFunc(keys, func(k trustedKey) bool {
					return k.row.Algorithm == r.Algorithm && k.row.State(now) == domain.KeyNext
				}); n >= 0 {
					next := keys[n].row
					next.SignFrom = now
					edited = append(edited, next)
				} else if g == nil || g.row.Algorithm != r.Algorithm {
					needKey = r.Algorithm
					return nil, errNeedKey
				} else {
					k, err := m.create(ctx, *g, now, now)
					if err != nil {
						return nil, err
					}
					g = nil
					created = append(created, k)
				}
			}
			out, err := m.apply(keys, edited)
			if err != nil {
				return nil, err
			}
			return append(out, created...), nil
		})
		if errors.Is(err, errNeedKey) {
			// Generate outside the lock, and start again.
			drawn, err := m.generate(needKey)
			if err != nil {
				return nil, err
			}
			g = &drawn
			continue
		}
		if err != nil {
			return nil, err
		}
		return m.statuses(created), nil
	}
}

var errNeedKey = errors.New("a key must be generated first")

var errNoneTrusted = errors.New("no stored signing key is trusted; the untrusted ones are logged (are the key-encryption keys those the workers use?)")

// Rewrap seals every trusted key that is sealed under an older
// key-encryption key under the first, and returns how many it sealed.
// Once it has run, and every worker has the new list, the older KEKs can
// leave the list (see the README for the whole procedure).
func (m *Manager) Rewrap(ctx context.Context) (int, error) {
	var n int
	err := m.store.UpdateSigningKeys(ctx, m.now(), func(ctx context.Context, stored []domain.SigningKey) ([]domain.SigningKey, error) {
		keys := m.trusted(stored)
		var stale []domain.SigningKey
		for _, k := range keys {
			if !k.fresh || k.legacy {
				stale = append(stale, k.row)
			}
		}
		n = len(stale)
		return m.apply(keys, stale)
	})
	return n, err
}

// statuses returns the status of keys just stored by this manager.
func (m *Manager) statuses(keys []domain.SigningKey) []KeyStatus {
	now := m.now()
	out := make([]KeyStatus, len(keys))
	for i, k := range keys {
		out[i] = KeyStatus{
			ID: k.ID, Algorithm: k.Algorithm, State: k.State(now), CreatedAt: k.CreatedAt,
			SignFrom: k.SignFrom, SignUntil: k.SignUntil, PublishUntil: k.PublishUntil,
		}
	}
	return out
}
