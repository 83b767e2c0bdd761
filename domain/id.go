package domain

// ValidID reports whether s is an id as authworker makes them: a UUID in
// canonical text form, lower-case hex in 8-4-4-4-12 groups. Storage keeps
// ids as UUIDs, and other spellings would not round-trip unchanged.
func ValidID(s string) bool {
	if len(s) != 36 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch i {
		case 8, 13, 18, 23:
			if c != '-' {
				return false
			}
		default:
			if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
				return false
			}
		}
	}
	return true
}
