package passwords_test

import (
	"testing"

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

func BenchmarkPolicyCheck(b *testing.B) {
	p := newPolicy(b, passwords.PolicyConfig{})
	b.ReportAllocs()
	for b.Loop() {
		if err := p.Check(benchPassword, domain.PasswordContext{}); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkNewPolicy(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := passwords.NewPolicy(passwords.PolicyConfig{}); err != nil {
			b.Fatal(err)
		}
	}
}
