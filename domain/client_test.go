package domain_test

import (
	"strings"
	"testing"

	"github.com/authworker/authworker/domain"
)

func TestParseClient(t *testing.T) {
	tests := []struct {
		name       string
		ip, ua     string
		wantIP     string
		wantSource string
		wantField  string
	}{
		{"NoAddress", "", "", "", "client:web", ""},
		{"IPv4", "203.0.113.7", "curl/8", "203.0.113.7", "ip:203.0.113.7", ""},
		{"IPv4MappedIsIPv4", "::ffff:203.0.113.7", "", "203.0.113.7", "ip:203.0.113.7", ""},
		{"IPv6GroupedBy64", "2001:db8:1:2:aaaa::1", "", "2001:db8:1:2:aaaa::1", "ip:2001:db8:1:2::/64", ""},
		{"IPv6OtherHostSame64", "2001:db8:1:2:bbbb::9", "", "2001:db8:1:2:bbbb::9", "ip:2001:db8:1:2::/64", ""},
		{"IPv6LongFormCanonical", "2001:0db8:0001:0002:0000:0000:0000:0001", "", "2001:db8:1:2::1", "ip:2001:db8:1:2::/64", ""},
		{"ZoneDropped", "fe80::1%eth0", "", "fe80::1", "ip:fe80::/64", ""},
		{"TrailingSpace", "203.0.113.7 ", "", "", "", "client.ip"},
		{"LeadingZeros", "203.0.113.007", "", "", "", "client.ip"},
		{"NotAnAddress", "not-an-ip", "", "", "", "client.ip"},
		{"AddressTooLong", strings.Repeat("1", 1024), "", "", "", "client.ip"},
		{"UserAgentTooLong", "", strings.Repeat("a", 100_000), "", "", "client.userAgent"},
		{"UserAgentLongest", "", strings.Repeat("a", domain.MaxUserAgentLen), "", "client:web", ""},
		{"UserAgentNotText", "", "bot\xff", "", "", "client.userAgent"},
		{"UserAgentNUL", "", "bot\x00", "", "", "client.userAgent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := domain.ParseClient("web", tt.ip, tt.ua)
			if tt.wantField != "" {
				e, ok := err.(*domain.Error)
				if !ok || e.Code != domain.CodeInvalid || e.Field != tt.wantField {
					t.Fatalf("ParseClient = %v, want invalid %s", err, tt.wantField)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.IP != tt.wantIP {
				t.Errorf("IP = %q, want %q", c.IP, tt.wantIP)
			}
			if got := c.Source(); got != tt.wantSource {
				t.Errorf("Source() = %q, want %q", got, tt.wantSource)
			}
		})
	}
}
