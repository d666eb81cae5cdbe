package devices

// AIM is an AIM symbology identifier (ISO/IEC 15424) as a scanner prefixes it
// to a frame: "]", a symbology letter and a modifier character, for example
// "]Q1" for a QR Code or "]E0" for an EAN-13. The empty AIM means the scanner
// sent none.
type AIM string

// ParseAIM splits a leading AIM symbology identifier off frame. It returns the
// identifier and the data after it, or "" and the whole frame when the frame
// does not start with one. The returned data shares frame's memory.
func ParseAIM(frame []byte) (AIM, []byte) {
	if len(frame) < 3 || frame[0] != ']' || !isLetter(frame[1]) || !isAlnum(frame[2]) {
		return "", frame
	}
	return AIM(frame[:3]), frame[3:]
}

// Code returns the symbology letter, or 0 for the empty AIM.
func (a AIM) Code() byte {
	if len(a) < 2 {
		return 0
	}
	return a[1]
}

// Is2D reports whether the identifier names a two-dimensional symbology, the
// only kind a phone screen shows a payment token in: QR Code (Q), Data Matrix
// (d), Aztec (z), PDF417 (L), MaxiCode (U) or Han Xin (h).
func (a AIM) Is2D() bool {
	switch a.Code() {
	case 'Q', 'd', 'z', 'L', 'U', 'h':
		return true
	default:
		return false
	}
}

// Symbology returns a readable name of the identifier's symbology for logs and
// screens, "none" for the empty AIM and "other" for a letter it does not know.
func (a AIM) Symbology() string {
	if a == "" {
		return "none"
	}
	if name, ok := symbologies[a.Code()]; ok {
		return name
	}
	return "other"
}

var symbologies = map[byte]string{
	'A': "Code 39",
	'C': "Code 128",
	'E': "EAN/UPC",
	'F': "Codabar",
	'G': "Code 93",
	'I': "Interleaved 2 of 5",
	'L': "PDF417",
	'Q': "QR Code",
	'U': "MaxiCode",
	'd': "Data Matrix",
	'e': "GS1 DataBar",
	'h': "Han Xin",
	'z': "Aztec",
}

func isLetter(b byte) bool {
	return (b >= 'A' && b <= 'Z') || (b >= 'a' && b <= 'z')
}

func isDigit(b byte) bool {
	return b >= '0' && b <= '9'
}

func isAlnum(b byte) bool {
	return isLetter(b) || isDigit(b)
}
