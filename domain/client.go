package domain

import (
	"net/netip"
	"strings"
	"unicode/utf8"
)

// Client describes who asked for a request: the calling service and, when it
// says so, the end user's address and user agent. Build one from a request
// with ParseClient.
type Client struct {
	ID        string
	IP        string // canonical text of the address: IPv4 unmapped, no zone
	UserAgent string
}

// Limits on the client metadata a request carries. An IP address in text is
// at most 45 bytes (an IPv6 address with an embedded IPv4 one); a user
// agent is informational, kept with the session, and browsers' stay well
// under 512 bytes.
const (
	MaxIPLen        = 45
	MaxUserAgentLen = 512
)

// ParseClient checks the client metadata of a request and puts the address
// in canonical form, so that one address has one spelling for throttling:
// IPv4-mapped IPv6 addresses become IPv4, zones are dropped. The client id
// is checked with the request id (RequestKey.Validate). It returns
// CodeInvalid naming the field ("client.ip", "client.userAgent") for an
// address that does not parse or is too long, and for a user agent that is
// too long or not text.
func ParseClient(id, ip, userAgent string) (Client, error) {
	c := Client{ID: id}
	if ip != "" {
		if len(ip) > MaxIPLen {
			return Client{}, Invalid("client.ip", "client.ip must be at most %d bytes", MaxIPLen)
		}
		addr, err := netip.ParseAddr(ip)
		if err != nil {
			return Client{}, Invalid("client.ip", "client.ip is not an IP address")
		}
		c.IP = addr.Unmap().WithZone("").String()
	}
	if len(userAgent) > MaxUserAgentLen {
		return Client{}, Invalid("client.userAgent", "client.userAgent must be at most %d bytes", MaxUserAgentLen)
	}
	if !utf8.ValidString(userAgent) || strings.IndexByte(userAgent, 0) >= 0 {
		return Client{}, Invalid("client.userAgent", "client.userAgent must be UTF-8 text without NUL characters")
	}
	c.UserAgent = userAgent
	return c, nil
}

// Source names where an attempt comes from, for per-source throttling: the
// end user's IPv4 address, or the /64 network of an IPv6 one (one host
// usually holds a whole /64, so single addresses are free to rotate); when
// the calling service gave no address, the service itself, so that a caller
// that leaves the address out is throttled as one source.
func (c Client) Source() string {
	if c.IP == "" {
		return "client:" + c.ID
	}
	addr, err := netip.ParseAddr(c.IP)
	if err != nil { // not built by ParseClient; still one bucket per text
		return "ip:" + c.IP
	}
	if addr.Is4() {
		return "ip:" + addr.String()
	}
	prefix, _ := addr.Prefix(64)
	return "ip:" + prefix.String()
}
