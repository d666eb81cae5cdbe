package devices

import (
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/tarm/serial"
)

// WriteFrame plays a scanner: it opens the device at path (a serial port, or
// the slave side of a pseudo-terminal that is wired to a lane's scanner path)
// as a raw port at DefaultBaud, writes aim+text+terminator in one write, and
// closes it. Raw mode matters on a pty, whose default output processing would
// turn an LF into CRLF.
//
// aim is empty or an AIM identifier such as "]Q1". terminator is the suffix,
// given as the bytes ("\r", "\n", "\r\n") or by name ("cr", "lf", "crlf");
// empty means CR, the factory setting of most scanners. text must be
// non-empty printable ASCII, because anything else would be split or dropped
// by the Reader; WriteFrame returns an error for it, for a malformed aim or
// terminator, and for a device it cannot open or write.
func WriteFrame(path string, text string, aim string, terminator string) error {
	if text == "" {
		return errors.New("write frame: text is empty")
	}
	if !printableASCII([]byte(text)) {
		return errors.New("write frame: text must be printable ASCII")
	}
	if aim != "" {
		if got, _ := ParseAIM([]byte(aim)); string(got) != aim {
			return fmt.Errorf("write frame: %q is not an AIM identifier such as ]Q1", aim)
		}
	}
	suffix, err := terminatorBytes(terminator)
	if err != nil {
		return fmt.Errorf("write frame: %w", err)
	}

	p, err := serial.OpenPort(&serial.Config{Name: path, Baud: DefaultBaud, ReadTimeout: DefaultReadTimeout})
	if err != nil {
		return fmt.Errorf("write frame: open %s: %w", path, err)
	}
	frame := []byte(aim + text + suffix)
	n, err := p.Write(frame)
	if err == nil && n < len(frame) {
		err = io.ErrShortWrite
	}
	if cerr := p.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write frame: %s: %w", path, err)
	}
	return nil
}

// terminatorBytes turns WriteFrame's terminator argument into the suffix.
func terminatorBytes(s string) (string, error) {
	switch strings.ToLower(s) {
	case "", "\r", "cr":
		return "\r", nil
	case "\n", "lf":
		return "\n", nil
	case "\r\n", "crlf":
		return "\r\n", nil
	default:
		return "", fmt.Errorf("terminator %q: want CR, LF or CRLF", s)
	}
}
