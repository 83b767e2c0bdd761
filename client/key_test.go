package client

import "testing"

func TestSubjectKeyNormalisesTheAddress(t *testing.T) {
	for _, in := range []string{"ada@example.com", "Ada@Example.COM", "  ADA@example.com\t"} {
		if got := subjectKey(in); got != "ada@example.com" {
			t.Errorf("subjectKey(%q) = %q, want ada@example.com", in, got)
		}
	}
}
