package seal

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"
)

// ParseKeys reads a list of key-encryption keys: base64 (standard, padded)
// of KeySize bytes each, separated by commas, newest first. The first
// seals; every one opens (NewBox(keys[0], purpose, keys[1:]...)), so that
// a new KEK can be put in front while values sealed under the older ones
// are still around.
//
// An error names the entry at fault by its position (1 for the first) and
// never holds any part of a key. A key listed twice is refused: it is a
// mistake in the list, and "newest first" would no longer say which is
// which.
func ParseKeys(list string) ([][]byte, error) {
	if strings.TrimSpace(list) == "" {
		return nil, errors.New("is required (generate one with: head -c 32 /dev/urandom | base64)")
	}
	entries := strings.Split(list, ",")
	keys := make([][]byte, 0, len(entries))
	for i, e := range entries {
		n := i + 1
		e = strings.TrimSpace(e)
		if e == "" {
			return nil, fmt.Errorf("entry %d of %d is empty", n, len(entries))
		}
		k, err := base64.StdEncoding.DecodeString(e)
		if err != nil {
			return nil, fmt.Errorf("entry %d of %d is not valid base64", n, len(entries))
		}
		if len(k) != KeySize {
			return nil, fmt.Errorf("entry %d of %d must decode to %d bytes, got %d", n, len(entries), KeySize, len(k))
		}
		for j, prev := range keys {
			if bytes.Equal(prev, k) {
				return nil, fmt.Errorf("entry %d of %d repeats entry %d", n, len(entries), j+1)
			}
		}
		keys = append(keys, k)
	}
	return keys, nil
}
