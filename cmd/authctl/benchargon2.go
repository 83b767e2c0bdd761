package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"math"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	xargon2 "golang.org/x/crypto/argon2"

	"github.com/authworker/authworker/passwords"
)

// The raw argon2id rates a bench relates its logins to: the worker's
// hasher and x/crypto's, at the worker's AUTH_ARGON2_* costs.

// argon2FromEnv reads the worker's argon2id settings as the worker does:
// an unset or empty variable takes the hasher's default, which is the
// worker's; the hasher checks the rest as it does in the worker.
func argon2FromEnv(getenv func(string) string) (passwords.HasherConfig, error) {
	var c passwords.HasherConfig
	for _, s := range []struct {
		name string
		max  uint64
		set  func(uint64)
	}{
		{"AUTH_ARGON2_MEMORY_KIB", math.MaxUint32, func(n uint64) { c.MemoryKiB = uint32(n) }},
		{"AUTH_ARGON2_TIME", math.MaxUint32, func(n uint64) { c.Time = uint32(n) }},
		{"AUTH_ARGON2_PARALLELISM", math.MaxUint8, func(n uint64) { c.Parallelism = uint8(n) }},
	} {
		v := getenv(s.name)
		if v == "" {
			continue
		}
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < 1 || n > s.max {
			return passwords.HasherConfig{}, fmt.Errorf("%s must be an integer from 1 to %d, got %q", s.name, s.max, v)
		}
		s.set(n)
	}
	if _, err := passwords.NewHasher(c); err != nil {
		return passwords.HasherConfig{}, err
	}
	return c, nil
}

// measureArgon2 measures the raw argon2id rate on every CPU for d with the
// worker's hasher and then for d with x/crypto's, saying so on standard
// error.
func (e *env) measureArgon2(ctx context.Context, cfg passwords.HasherConfig, d time.Duration, when string) (*argon2Report, error) {
	fmt.Fprintf(e.stderr, "bench: measuring the raw argon2id rate %s, for %s on %d goroutines with the worker's hasher and as long with x/crypto's\n",
		when, d, runtime.NumCPU())
	return measureArgon2(ctx, cfg, runtime.NumCPU(), d)
}

// measureArgon2 hashes on goroutines at once for d with the worker's
// hasher, then for d with x/crypto's argon2id at the same costs, and
// returns both rates.
func measureArgon2(ctx context.Context, cfg passwords.HasherConfig, goroutines int, d time.Duration) (*argon2Report, error) {
	h, err := passwords.NewHasher(cfg)
	if err != nil {
		return nil, err
	}
	var pw [18]byte
	rand.Read(pw[:])
	password := base64.RawURLEncoding.EncodeToString(pw[:])
	r := &argon2Report{
		MemoryKiB: cmp(cfg.MemoryKiB, passwords.DefaultMemoryKiB), Time: cmp(cfg.Time, passwords.DefaultTime),
		Parallelism: cmp(cfg.Parallelism, passwords.DefaultParallelism),
		Goroutines:  goroutines,
	}
	worker, err := hashRate(ctx, goroutines, d, func() error {
		_, err := h.Hash(password)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("argon2id: %w", err)
	}
	r.argon2Rate = worker
	salt := make([]byte, cmp(cfg.SaltLen, passwords.DefaultSaltLen))
	rand.Read(salt)
	x, err := hashRate(ctx, goroutines, d, func() error {
		xargon2.IDKey([]byte(password), salt, r.Time, r.MemoryKiB, r.Parallelism, cmp(cfg.KeyLen, passwords.DefaultKeyLen))
		return nil
	})
	if err != nil {
		return nil, err
	}
	r.XCrypto = &x
	return r, nil
}

// hashRate runs hash on goroutines at once, over and over, for d.
func hashRate(ctx context.Context, goroutines int, d time.Duration, hash func() error) (argon2Rate, error) {
	var hashes atomic.Int64
	start := time.Now()
	deadline := start.Add(d)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for range goroutines {
		wg.Go(func() {
			for ctx.Err() == nil && time.Now().Before(deadline) {
				if err := hash(); err != nil {
					errs <- err
					return
				}
				hashes.Add(1)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start).Seconds()
	close(errs)
	if err := <-errs; err != nil {
		return argon2Rate{}, err
	}
	return argon2Rate{Hashes: hashes.Load(), Seconds: elapsed, PerSecond: float64(hashes.Load()) / elapsed}, nil
}

// cmp returns v, or def when v is zero.
func cmp[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}
