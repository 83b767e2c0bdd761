package passwords_test

import (
	"context"
	"testing"
	"unicode/utf8"

	"github.com/authworker/authworker/domain"

	"github.com/authworker/authworker/passwords"
)

// Benchmarks run at the defaults, the OWASP minimum (m=19456 KiB, t=2, p=1).

const benchPassword = "plum kayak violet thunder"

func BenchmarkHash(b *testing.B) {
	h := newHasher(b, passwords.HasherConfig{})
	b.ReportAllocs()
	for b.Loop() {
		if _, err := h.Hash(benchPassword); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerify(b *testing.B) {
	h := newHasher(b, passwords.HasherConfig{})
	encoded := mustHash(b, h, benchPassword)
	b.ReportAllocs()
	for b.Loop() {
		if match, _, err := h.Verify(benchPassword, encoded); err != nil || !match {
			b.Fatalf("match=%v err=%v", match, err)
		}
	}
}

func BenchmarkVerifyDummy(b *testing.B) {
	h := newHasher(b, passwords.HasherConfig{})
	b.ReportAllocs()
	for b.Loop() {
		h.VerifyDummy(benchPassword)
	}
}

func BenchmarkVerifyLegacyBcrypt(b *testing.B) {
	h := newHasher(b, passwords.HasherConfig{})
	b.ReportAllocs()
	for b.Loop() {
		if match, _, err := h.Verify("rasmuslerdorf", phpBcrypt2y); err != nil || !match {
			b.Fatalf("match=%v err=%v", match, err)
		}
	}
}

// BenchmarkPolicyCheck measures a check at the defaults, for an account with
// an e-mail address, on the kinds of input the estimate costs most or least
// on. Every input but the first has 64 code points, the length NIST asks a
// verifier to accept at least; the estimate sees the first 20.
func BenchmarkPolicyCheck(b *testing.B) {
	p := newPolicy(b, passwords.PolicyConfig{})
	c := domain.PasswordContext{Email: "ada.lovelace.example@example.com"}
	const manager = "t8Jq#2vN!x5Lm@9Rz&4Wc$7Hb%1Fd^6Kp*3Gs(0Ye)8Ua_2Io+5Ql=9Tn~4Ev?7W"
	var animals []rune // 64 different emoji, U+1F400 to U+1F43F
	for r := rune(0x1F400); r < 0x1F440; r++ {
		animals = append(animals, r)
	}
	for _, bb := range []struct{ name, password string }{
		{"Passphrase", benchPassword},
		{"Passphrase64", "I like to eat pancakes with maple syrup every sunday morning, ok"},
		{"PasswordManager64", manager},
		// The estimate's worst case found: l33t symbols in all 20 code points
		// it sees.
		{"L33tSymbols64", "4@8({[<3691!|7$5+0%2" + manager[:44]},
		{"Cyrillic64", firstRunes("съешь же ещё этих мягких французских булок, да выпей чаю, друг мой!", 64)},
		{"Emoji64", string(animals)},
	} {
		if n := utf8.RuneCountInString(bb.password); bb.name != "Passphrase" && n != 64 {
			b.Fatalf("%s: %d code points, want 64", bb.name, n)
		}
		b.Run(bb.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				_ = p.Check(bb.password, c)
			}
		})
	}
}

// firstRunes returns the first n code points of s.
func firstRunes(s string, n int) string {
	return string([]rune(s)[:n])
}

func BenchmarkNewPolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := passwords.NewPolicy(passwords.PolicyConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkPoolVerify measures what admission adds to a verification:
// the bare Hasher against the same Hasher behind a Pool, one goroutine and
// as many as the CPUs (b.RunParallel), at a tiny memory cost where the
// overhead shows and at the defaults.
func BenchmarkPoolVerify(b *testing.B) {
	for _, c := range []struct {
		name string
		cfg  passwords.HasherConfig
	}{
		{"m=64", cheap()},
		{"Defaults", passwords.HasherConfig{}},
	} {
		h := newHasher(b, c.cfg)
		encoded := mustHash(b, h, benchPassword)
		p, err := passwords.NewPool(h, passwords.PoolConfig{})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(p.Close)
		ctx := context.Background()
		verify := map[string]func() (bool, bool, error){
			"Bare": func() (bool, bool, error) { return h.Verify(benchPassword, encoded) },
			"Pool": func() (bool, bool, error) { return p.Verify(ctx, benchPassword, encoded) },
		}
		for _, how := range []string{"Bare", "Pool"} {
			b.Run(c.name+"/"+how, func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if match, _, err := verify[how](); err != nil || !match {
						b.Fatalf("match=%v err=%v", match, err)
					}
				}
			})
			b.Run(c.name+"/"+how+"/Parallel", func(b *testing.B) {
				b.ReportAllocs()
				b.RunParallel(func(pb *testing.PB) {
					for pb.Next() {
						if match, _, err := verify[how](); err != nil || !match {
							b.Errorf("match=%v err=%v", match, err)
							return
						}
					}
				})
			})
		}
	}
}
