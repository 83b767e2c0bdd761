package tokens

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"

	"github.com/golang-jwt/jwt/v5"
)

// KeySet is a set of public keys that a Verifier trusts, by kid, each with
// its one algorithm. Services that verify tokens offline build one from the
// worker's JWKS with ParseJWKS.
type KeySet struct {
	keys map[string]verifyingKey // by kid
}

type verifyingKey struct {
	method jwt.SigningMethod
	key    crypto.PublicKey
}

func (ks *KeySet) lookup(kid string) (verifyingKey, bool) {
	k, ok := ks.keys[kid]
	return k, ok
}

// ParseJWKS reads a JSON Web Key Set such as the one served at
// /.well-known/jwks.json. Keys of unsupported types are skipped, as RFC 7517
// asks; a set with no usable key is an error.
func ParseJWKS(data []byte) (*KeySet, error) {
	var set JWKS
	if err := json.Unmarshal(data, &set); err != nil {
		return nil, fmt.Errorf("parse JWKS: %w", err)
	}
	ks := &KeySet{keys: make(map[string]verifyingKey, len(set.Keys))}
	for _, k := range set.Keys {
		if k.Use != "" && k.Use != "sig" {
			continue
		}
		method, err := signingMethod(k.Alg)
		if err != nil {
			continue
		}
		pub, err := k.PublicKey()
		if err != nil {
			return nil, fmt.Errorf("parse JWKS key %q: %w", k.Kid, err)
		}
		ks.keys[k.Kid] = verifyingKey{method: method, key: pub}
	}
	if len(ks.keys) == 0 {
		return nil, errors.New("parse JWKS: no usable signing key")
	}
	return ks, nil
}

// PublicKey returns the key k describes.
func (k JWK) PublicKey() (crypto.PublicKey, error) {
	switch k.Kty {
	case "OKP":
		x, err := b64.DecodeString(k.X)
		if err != nil || k.Crv != "Ed25519" || len(x) != ed25519.PublicKeySize {
			return nil, errors.New("invalid Ed25519 key")
		}
		return ed25519.PublicKey(x), nil
	case "EC":
		x, errX := b64.DecodeString(k.X)
		y, errY := b64.DecodeString(k.Y)
		if errX != nil || errY != nil || k.Crv != "P-256" || len(x) != 32 || len(y) != 32 {
			return nil, errors.New("invalid P-256 key")
		}
		return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
	case "RSA":
		n, errN := b64.DecodeString(k.N)
		e, errE := b64.DecodeString(k.E)
		if errN != nil || errE != nil || len(n) < 256 || len(e) == 0 || len(e) > 4 {
			return nil, errors.New("invalid RSA key")
		}
		return &rsa.PublicKey{N: new(big.Int).SetBytes(n), E: int(new(big.Int).SetBytes(e).Int64())}, nil
	}
	return nil, fmt.Errorf("unsupported key type %q", k.Kty)
}
