package outbound

import (
	"net/netip"
	"strconv"
	"strings"
)

// isNumericLabel reports whether a DNS label is a number as inet_aton(3)
// reads one: decimal, octal (leading 0) or hex (0x). Such a label is never
// a real top-level domain.
func isNumericLabel(s string) bool {
	if len(s) >= 2 && (s[:2] == "0x" || s[:2] == "0X") {
		s = s[2:]
		for i := 0; i < len(s); i++ {
			c := s[i] | 0x20 // lower-case letters; digits are unchanged
			if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
				return false
			}
		}
		return true // "0x" alone is 0 to inet_aton
	}
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return true
}

// parseLegacyIPv4 reads s the way inet_aton(3) does, so that an error can
// name the address a non-standard host denotes: one to four parts, each
// decimal, octal or hex, the last part filling the remaining bytes
// ("127.1" is 127.0.0.1, "2130706433" is 127.0.0.1).
func parseLegacyIPv4(s string) (netip.Addr, bool) {
	parts := strings.Split(s, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var ip uint32
	for i, p := range parts {
		v, ok := parseLegacyPart(p)
		if !ok {
			return netip.Addr{}, false
		}
		if i < len(parts)-1 {
			if v > 0xff {
				return netip.Addr{}, false
			}
			ip |= uint32(v) << (24 - 8*i)
			continue
		}
		// The last part fills the 4-i remaining bytes.
		if bits := 8 * (4 - i); bits < 32 && v >= 1<<bits {
			return netip.Addr{}, false
		}
		ip |= uint32(v)
	}
	return netip.AddrFrom4([4]byte{byte(ip >> 24), byte(ip >> 16), byte(ip >> 8), byte(ip)}), true
}

func parseLegacyPart(p string) (uint64, bool) {
	if !isNumericLabel(p) {
		return 0, false
	}
	base := 10
	switch {
	case len(p) >= 2 && (p[1] == 'x' || p[1] == 'X'):
		base, p = 16, p[2:]
		if p == "" {
			return 0, true
		}
	case len(p) > 1 && p[0] == '0':
		base, p = 8, p[1:]
	}
	v, err := strconv.ParseUint(p, base, 32)
	return v, err == nil
}
