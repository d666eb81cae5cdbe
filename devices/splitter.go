package devices

import (
	"bytes"
	"fmt"
	"strings"
	"time"
)

// DefaultMaxFrame is the largest frame, in bytes without the terminator, that a
// Splitter delivers unless told otherwise. A signed payment token is a few
// hundred bytes; anything near this size is line noise or a wrong device.
const DefaultMaxFrame = 4096

// DefaultInterByteTimeout is how long a Splitter waits for the next byte of a
// partial frame before discarding it. A scanner sends a frame in one burst, so
// a longer gap means the rest was lost.
const DefaultInterByteTimeout = 200 * time.Millisecond

// Terminator says which bytes end a frame.
type Terminator int

const (
	// TerminatorAny ends a frame at CR, at LF, or at CRLF (counted once). It is
	// the default, because it works whatever suffix the scanner was set to.
	TerminatorAny Terminator = iota
	// TerminatorCR ends a frame at CR only; an LF is a control byte.
	TerminatorCR
	// TerminatorLF ends a frame at LF only; a CR is a control byte.
	TerminatorLF
	// TerminatorCRLF ends a frame at CR followed by LF only; a CR or LF on its
	// own is a control byte.
	TerminatorCRLF
)

// String returns the terminator's name as ParseTerminator accepts it.
func (t Terminator) String() string {
	switch t {
	case TerminatorAny:
		return "any"
	case TerminatorCR:
		return "cr"
	case TerminatorLF:
		return "lf"
	case TerminatorCRLF:
		return "crlf"
	default:
		return fmt.Sprintf("Terminator(%d)", int(t))
	}
}

// ParseTerminator parses a terminator name from a configuration file: "any"
// (or empty), "cr", "lf" or "crlf", in any case. It returns an error naming the
// accepted values for anything else.
func ParseTerminator(s string) (Terminator, error) {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "", "any":
		return TerminatorAny, nil
	case "cr":
		return TerminatorCR, nil
	case "lf":
		return TerminatorLF, nil
	case "crlf":
		return TerminatorCRLF, nil
	default:
		return 0, fmt.Errorf("unknown terminator %q: want any, cr, lf or crlf", s)
	}
}

// DropReason says why a frame was not delivered.
type DropReason int

const (
	// DropOversize is a frame longer than the size cap.
	DropOversize DropReason = iota + 1
	// DropBinary is a frame with a control byte or a byte outside ASCII.
	DropBinary
	// DropIncomplete is a partial frame whose next byte did not come within
	// the inter-byte timeout, or that was cut off when the scanner went away.
	DropIncomplete
	// DropRejected is a frame the classifier refused, such as a payment token
	// read from a 1D barcode.
	DropRejected
)

// String returns the reason as it appears in logs.
func (r DropReason) String() string {
	switch r {
	case DropOversize:
		return "oversize"
	case DropBinary:
		return "binary"
	case DropIncomplete:
		return "incomplete"
	case DropRejected:
		return "rejected"
	default:
		return fmt.Sprintf("DropReason(%d)", int(r))
	}
}

// DropCounts counts dropped frames by reason.
type DropCounts struct {
	// Oversize counts frames over the size cap.
	Oversize uint64
	// Binary counts frames with a control or non-ASCII byte.
	Binary uint64
	// Incomplete counts partial frames that stalled or were cut off.
	Incomplete uint64
	// Rejected counts frames the classifier refused; a Splitter leaves it
	// zero and the Reader fills it in.
	Rejected uint64
}

// Total returns the number of dropped frames, whatever the reason.
func (c DropCounts) Total() uint64 {
	return c.Oversize + c.Binary + c.Incomplete + c.Rejected
}

func (c *DropCounts) add(r DropReason) {
	switch r {
	case DropOversize:
		c.Oversize++
	case DropBinary:
		c.Binary++
	case DropIncomplete:
		c.Incomplete++
	case DropRejected:
		c.Rejected++
	}
}

// Splitter cuts a scanner's byte stream into frames. It does no I/O: the
// caller feeds it the chunks that reads return, with the time they arrived, so
// tests control time. It holds at most its size cap of bytes, whatever it is
// fed. A Splitter is not safe for concurrent use.
type Splitter struct {
	terminator Terminator
	maxFrame   int
	interByte  time.Duration

	buf       []byte    // the current frame's bytes while it is still deliverable
	n         int       // bytes in the current frame, saturating at maxFrame+1
	binary    bool      // the current frame holds a control or non-ASCII byte
	pendingCR bool      // TerminatorCRLF: a CR arrived, its LF may follow
	last      time.Time // when the last byte arrived
	drops     DropCounts
}

// NewSplitter returns a Splitter for the given terminator. A maxFrame or
// interByteTimeout of zero or less selects DefaultMaxFrame or
// DefaultInterByteTimeout.
func NewSplitter(t Terminator, maxFrame int, interByteTimeout time.Duration) *Splitter {
	if maxFrame <= 0 {
		maxFrame = DefaultMaxFrame
	}
	if interByteTimeout <= 0 {
		interByteTimeout = DefaultInterByteTimeout
	}
	return &Splitter{terminator: t, maxFrame: maxFrame, interByte: interByteTimeout}
}

// Feed adds the bytes p that arrived at now and returns the complete frames
// they finished, in order, without terminators. Each returned frame is a fresh
// slice of printable ASCII, between 1 and the size cap long. A partial frame
// left from earlier is discarded first if now is more than the inter-byte
// timeout after its last byte.
func (s *Splitter) Feed(now time.Time, p []byte) [][]byte {
	s.Expire(now)
	if len(p) == 0 {
		return nil
	}
	var frames [][]byte
	for _, b := range p {
		if f := s.push(b); f != nil {
			frames = append(frames, f)
		}
	}
	s.last = now
	return frames
}

// Expire discards the partial frame, counting it as DropIncomplete, if now is
// more than the inter-byte timeout after its last byte. It reports whether it
// discarded one. Callers call it when a read times out, so that a stalled
// frame is counted without waiting for the next byte.
func (s *Splitter) Expire(now time.Time) bool {
	if !s.partial() || now.Sub(s.last) <= s.interByte {
		return false
	}
	s.drops.add(DropIncomplete)
	s.reset()
	return true
}

// Reset discards the partial frame, counting it as DropIncomplete if there was
// one. Callers call it when the device goes away mid-frame.
func (s *Splitter) Reset() {
	if s.partial() {
		s.drops.add(DropIncomplete)
	}
	s.reset()
}

// Drops returns the number of frames dropped so far, by reason.
func (s *Splitter) Drops() DropCounts {
	return s.drops
}

// Pending returns how many bytes of a partial frame the Splitter holds; it is
// never more than the size cap.
func (s *Splitter) Pending() int {
	return len(s.buf)
}

func (s *Splitter) partial() bool {
	return s.n > 0 || s.pendingCR
}

func (s *Splitter) reset() {
	s.buf = s.buf[:0]
	s.n = 0
	s.binary = false
	s.pendingCR = false
}

// push adds one byte and returns the frame it completed, if any.
func (s *Splitter) push(b byte) []byte {
	switch s.terminator {
	case TerminatorCR:
		if b == '\r' {
			return s.end()
		}
	case TerminatorLF:
		if b == '\n' {
			return s.end()
		}
	case TerminatorCRLF:
		if s.pendingCR {
			s.pendingCR = false
			if b == '\n' {
				return s.end()
			}
			s.add('\r')
		}
		if b == '\r' {
			s.pendingCR = true
			return nil
		}
	default:
		if b == '\r' || b == '\n' {
			return s.end()
		}
	}
	s.add(b)
	return nil
}

// add appends a data byte to the current frame. Past the size cap it keeps
// only the count, so that an endless frame costs no memory.
func (s *Splitter) add(b byte) {
	if s.n > s.maxFrame {
		return
	}
	s.n++
	if s.n > s.maxFrame {
		s.buf = s.buf[:0]
		return
	}
	if b < 0x20 || b > 0x7e {
		s.binary = true
		s.buf = s.buf[:0]
	}
	if !s.binary {
		s.buf = append(s.buf, b)
	}
}

// end closes the current frame at a terminator and returns it if it is
// deliverable; an empty frame is ignored without counting.
func (s *Splitter) end() []byte {
	defer s.reset()
	switch {
	case s.n == 0:
		return nil
	case s.n > s.maxFrame:
		s.drops.add(DropOversize)
		return nil
	case s.binary:
		s.drops.add(DropBinary)
		return nil
	default:
		return bytes.Clone(s.buf)
	}
}
