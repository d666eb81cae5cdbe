package devices_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"storegate/devices"
)

// referenceSplit is the Splitter's specification written the slow, obvious way:
// cut the stream at every terminator, ignore empty pieces, drop long ones and
// ones with a byte outside printable ASCII, and hold back the unterminated
// tail.
func referenceSplit(data []byte, term devices.Terminator, maxFrame int) ([][]byte, devices.DropCounts) {
	var pieces [][]byte
	switch term {
	case devices.TerminatorCR:
		pieces = bytes.Split(data, []byte("\r"))
	case devices.TerminatorLF:
		pieces = bytes.Split(data, []byte("\n"))
	case devices.TerminatorCRLF:
		pieces = bytes.Split(data, []byte("\r\n"))
	default:
		start := 0
		for i, b := range data {
			if b == '\r' || b == '\n' {
				pieces = append(pieces, data[start:i])
				start = i + 1
			}
		}
		pieces = append(pieces, data[start:])
	}
	pieces = pieces[:len(pieces)-1] // the tail has no terminator yet

	var frames [][]byte
	var drops devices.DropCounts
	for _, p := range pieces {
		switch {
		case len(p) == 0:
		case len(p) > maxFrame:
			drops.Oversize++
		case bytes.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r > 0x7e }):
			drops.Binary++
		default:
			frames = append(frames, p)
		}
	}
	return frames, drops
}

func FuzzSplitter(f *testing.F) {
	f.Add([]byte("4901234567894\r\n49123456\r\n"), uint8(0), uint16(0), uint8(3))
	f.Add([]byte("ABC\r"), uint8(3), uint16(0), uint8(3)) // CRLF split after the CR
	f.Add([]byte("ABC\r\nDEF\r\n"), uint8(3), uint16(8), uint8(4))
	f.Add([]byte("]Q1SGP1:6BFOXN*TS0BI$ZD-CH1KSL\r"), uint8(0), uint16(0), uint8(7))
	f.Add([]byte("]C1SGP1:ABC\r]E04901234567894\n"), uint8(1), uint16(0), uint8(1))
	f.Add([]byte("\x00\x00\x00\x00\r\x00AB\n"), uint8(2), uint16(0), uint8(2))
	f.Add([]byte(strings.Repeat("GARBAGE\xff\x01", 700)+"\r\nOK\r\n"), uint8(0), uint16(64), uint8(15))
	f.Add([]byte("AB\r\r\nCD\n\r\n\r\r"), uint8(3), uint16(2), uint8(0))
	f.Add([]byte("\r\n\r\n\n\r"), uint8(0), uint16(1), uint8(0))

	f.Fuzz(func(t *testing.T, data []byte, mode uint8, maxFrame uint16, chunk uint8) {
		term := devices.Terminator(mode % 4)
		limit := int(maxFrame%512) + 1
		size := int(chunk%16) + 1

		whole := devices.NewSplitter(term, limit, time.Second)
		all := whole.Feed(t0, data)

		pieces := devices.NewSplitter(term, limit, time.Second)
		var chunked [][]byte
		for i := 0; i < len(data); i += size {
			end := min(i+size, len(data))
			now := t0.Add(time.Duration(i) * time.Microsecond)
			chunked = append(chunked, pieces.Feed(now, data[i:end])...)
			if got := pieces.Pending(); got > limit {
				t.Fatalf("holds %d bytes, over the cap of %d", got, limit)
			}
		}

		for _, fr := range all {
			if len(fr) == 0 || len(fr) > limit {
				t.Fatalf("frame of %d bytes, want 1..%d", len(fr), limit)
			}
			for _, b := range fr {
				if b < 0x20 || b > 0x7e {
					t.Fatalf("frame %q holds byte %#x", fr, b)
				}
			}
		}
		if !slices.EqualFunc(all, chunked, bytes.Equal) {
			t.Fatalf("chunking changed the frames: whole %q, in chunks of %d %q", all, size, chunked)
		}
		if whole.Drops() != pieces.Drops() {
			t.Fatalf("chunking changed the drops: whole %+v, chunked %+v", whole.Drops(), pieces.Drops())
		}
		wantFrames, wantDrops := referenceSplit(data, term, limit)
		if !slices.EqualFunc(all, wantFrames, bytes.Equal) {
			t.Fatalf("%v cap %d: got %q, want %q", term, limit, all, wantFrames)
		}
		if got := whole.Drops(); got != wantDrops {
			t.Fatalf("%v cap %d: drops %+v, want %+v", term, limit, got, wantDrops)
		}
	})
}

func FuzzClassify(f *testing.F) {
	for _, seed := range []string{
		"]Q1SGP1:6BFOXN*TS0BI$ZD-CH1KSL",
		"]C0SGP1:6BFOXN*TS0BI$ZD-CH1KSL",
		"SGP1:",
		"]d2SGP1:A",
		"4901234567894",
		"]E04901234567890",
		"49123456",
		"036000291452",
		"12345678901234567890",
		"123456789012345",
		"]Q1",
		"]",
		"\x00\x00\x00",
		"SGP1:\x00",
		"]Q1\xff\xfe",
		strings.Repeat("9", 200),
	} {
		f.Add([]byte(seed))
	}

	f.Fuzz(func(t *testing.T, frame []byte) {
		s := devices.Classify(frame)

		if got := string(s.AIM) + s.Text; got != string(frame) {
			t.Fatalf("AIM %q + Text %q do not rebuild the frame %q", s.AIM, s.Text, frame)
		}
		if (s.Kind == devices.KindUnknown) != (s.Reason != "") {
			t.Fatalf("kind %v with reason %q", s.Kind, s.Reason)
		}
		switch s.Kind {
		case devices.KindPaymentToken:
			if !strings.HasPrefix(s.Text, devices.TokenPrefix) || (s.AIM != "" && !s.AIM.Is2D()) {
				t.Fatalf("token %q with AIM %q", s.Text, s.AIM)
			}
		case devices.KindPaymentCode:
			if len(s.Text) < 16 || len(s.Text) > 20 || strings.Trim(s.Text, "0123456789") != "" {
				t.Fatalf("payment code %q", s.Text)
			}
		case devices.KindProduct:
			if n := len(s.Text); (n != 8 && n != 12 && n != 13) || !devices.ValidCheckDigit(s.Text) {
				t.Fatalf("product %q", s.Text)
			}
		case devices.KindUnknown:
		default:
			t.Fatalf("kind %v out of range", s.Kind)
		}
		if s.Rejected() && (s.Kind != devices.KindUnknown || !strings.HasPrefix(s.Text, devices.TokenPrefix)) {
			t.Fatalf("rejected %+v", s)
		}

		// Whatever the frame, the event never shows a credential in full.
		hub := devices.NewScanHub()
		ev := hub.Publish("1", s)
		if s.Kind.IsCredential() {
			if ev.ScanID == "" || ev.Code != "" {
				t.Fatalf("credential event %+v", ev)
			}
			if got, err := hub.Take("1", ev.ScanID); err != nil || got != s.Text {
				t.Fatalf("Take: got %q, %v; want %q", got, err, s.Text)
			}
		}
		if s.Sensitive() && (ev.Code != "" || (len(s.Text) > 10 && strings.Contains(ev.Fingerprint, s.Text))) {
			t.Fatalf("sensitive text %q leaked in %+v", s.Text, ev)
		}
		if !s.Kind.IsCredential() && !s.Sensitive() && ev.Code != s.Text {
			t.Fatalf("code %q, want the text %q in full", ev.Code, s.Text)
		}
	})
}
