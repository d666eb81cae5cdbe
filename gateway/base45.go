package gateway

import (
	"errors"
	"fmt"
	"strings"
)

// base45Alphabet is the 45-character alphabet of RFC 9285, section 4: the
// characters of QR code alphanumeric mode.
const base45Alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ $%*+-./:"

// base45Value maps a byte to its base45 value, or -1 for bytes outside the
// alphabet.
var base45Value = func() [256]int {
	var v [256]int
	for i := range v {
		v[i] = -1
	}
	for i := 0; i < len(base45Alphabet); i++ {
		v[base45Alphabet[i]] = i
	}
	return v
}()

// ErrBase45 is wrapped by every base45 decoding error.
var ErrBase45 = errors.New("invalid base45")

// Base45Encode encodes b as RFC 9285 base45.
func Base45Encode(b []byte) string {
	var sb strings.Builder
	sb.Grow((len(b)/2)*3 + 2)
	for i := 0; i+1 < len(b); i += 2 {
		n := int(b[i])<<8 | int(b[i+1])
		sb.WriteByte(base45Alphabet[n%45])
		sb.WriteByte(base45Alphabet[(n/45)%45])
		sb.WriteByte(base45Alphabet[n/2025])
	}
	if len(b)%2 == 1 {
		n := int(b[len(b)-1])
		sb.WriteByte(base45Alphabet[n%45])
		sb.WriteByte(base45Alphabet[n/45])
	}
	return sb.String()
}

// Base45Decode decodes RFC 9285 base45. It refuses characters outside the
// alphabet (lowercase included), a dangling single character, and groups that
// decode past their byte range, as section 6 requires.
func Base45Decode(s string) ([]byte, error) {
	if len(s)%3 == 1 {
		return nil, fmt.Errorf("%w: length %d leaves a single character", ErrBase45, len(s))
	}
	out := make([]byte, 0, len(s)/3*2+1)
	for i := 0; i < len(s); i += 3 {
		var d [3]int
		n := min(3, len(s)-i)
		for j := 0; j < n; j++ {
			d[j] = base45Value[s[i+j]]
			if d[j] < 0 {
				return nil, fmt.Errorf("%w: character %q at %d is not in the alphabet", ErrBase45, s[i+j], i+j)
			}
		}
		if n == 3 {
			v := d[0] + d[1]*45 + d[2]*2025
			if v > 0xFFFF {
				return nil, fmt.Errorf("%w: group at %d decodes past 65535", ErrBase45, i)
			}
			out = append(out, byte(v>>8), byte(v))
		} else {
			v := d[0] + d[1]*45
			if v > 0xFF {
				return nil, fmt.Errorf("%w: final group at %d decodes past 255", ErrBase45, i)
			}
			out = append(out, byte(v))
		}
	}
	return out, nil
}
