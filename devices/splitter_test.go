package devices_test

import (
	"bytes"
	"slices"
	"strings"
	"testing"
	"time"

	"storegate/devices"
)

var t0 = time.Date(2026, 3, 1, 10, 0, 0, 0, time.UTC)

// feedAll feeds chunks 1 ms apart, well within the inter-byte timeout, and
// returns the frames as strings.
func feedAll(s *devices.Splitter, chunks ...string) []string {
	var got []string
	for i, c := range chunks {
		for _, f := range s.Feed(t0.Add(time.Duration(i)*time.Millisecond), []byte(c)) {
			got = append(got, string(f))
		}
	}
	return got
}

func TestSplitter_Terminators(t *testing.T) {
	tests := []struct {
		name  string
		term  devices.Terminator
		input string
		want  []string
		drops devices.DropCounts
	}{
		{"CR", devices.TerminatorCR, "ABC\rDEF\r", []string{"ABC", "DEF"}, devices.DropCounts{}},
		{"LF", devices.TerminatorLF, "ABC\nDEF\n", []string{"ABC", "DEF"}, devices.DropCounts{}},
		{"CRLF", devices.TerminatorCRLF, "ABC\r\nDEF\r\n", []string{"ABC", "DEF"}, devices.DropCounts{}},
		{"AnyCR", devices.TerminatorAny, "ABC\rDEF\r", []string{"ABC", "DEF"}, devices.DropCounts{}},
		{"AnyLF", devices.TerminatorAny, "ABC\nDEF\n", []string{"ABC", "DEF"}, devices.DropCounts{}},
		{"AnyCRLF", devices.TerminatorAny, "ABC\r\nDEF\r\n", []string{"ABC", "DEF"}, devices.DropCounts{}},
		{"AnyMixed", devices.TerminatorAny, "ABC\nDEF\r\nGHI\r", []string{"ABC", "DEF", "GHI"}, devices.DropCounts{}},
		{"EmptyFramesIgnored", devices.TerminatorAny, "\r\n\r\n\n\rABC\r\r\r", []string{"ABC"}, devices.DropCounts{}},
		{"CRLFEmptyFramesIgnored", devices.TerminatorCRLF, "\r\n\r\nABC\r\n\r\n", []string{"ABC"}, devices.DropCounts{}},
		{"CRModeLFIsBinary", devices.TerminatorCR, "ABC\r\nDEF\r", []string{"ABC"}, devices.DropCounts{Binary: 1}},
		{"LFModeCRIsBinary", devices.TerminatorLF, "ABC\r\nDEF\n", []string{"DEF"}, devices.DropCounts{Binary: 1}},
		{"CRLFModeLoneCRIsBinary", devices.TerminatorCRLF, "AB\rC\r\nDEF\r\n", []string{"DEF"}, devices.DropCounts{Binary: 1}},
		{"CRLFModeLoneLFIsBinary", devices.TerminatorCRLF, "AB\nC\r\nDEF\r\n", []string{"DEF"}, devices.DropCounts{Binary: 1}},
		{"CRLFModeCRBeforeCRLF", devices.TerminatorCRLF, "AB\r\r\nDEF\r\n", []string{"DEF"}, devices.DropCounts{Binary: 1}},
		{"NoTerminatorNoFrame", devices.TerminatorAny, "ABC", nil, devices.DropCounts{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := devices.NewSplitter(tt.term, 0, 0)
			got := feedAll(s, tt.input)
			if !slices.Equal(got, tt.want) {
				t.Errorf("frames: got %q, want %q", got, tt.want)
			}
			if got := s.Drops(); got != tt.drops {
				t.Errorf("drops: got %+v, want %+v", got, tt.drops)
			}
		})
	}
}

func TestSplitter_CRLF(t *testing.T) {
	t.Run("SplitBetweenChunks", func(t *testing.T) {
		for _, term := range []devices.Terminator{devices.TerminatorAny, devices.TerminatorCRLF} {
			s := devices.NewSplitter(term, 0, 0)
			got := feedAll(s, "ABC\r", "\nDEF\r", "\n")
			if want := []string{"ABC", "DEF"}; !slices.Equal(got, want) {
				t.Errorf("%v: got %q, want %q", term, got, want)
			}
			if got := s.Drops().Total(); got != 0 {
				t.Errorf("%v: dropped %d frames, want 0", term, got)
			}
		}
	})
	t.Run("CountsOnce", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		got := feedAll(s, "A\r\nB\r\nC\r\n")
		if want := []string{"A", "B", "C"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
}

func TestSplitter_Pieces(t *testing.T) {
	t.Run("Reassembled", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		got := feedAll(s, "]Q1SG", "P1:AB", "C", "D\r")
		if want := []string{"]Q1SGP1:ABCD"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("TwoFramesOneChunk", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		got := feedAll(s, "4901234567894\r49123456\r")
		if want := []string{"4901234567894", "49123456"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
	})
	t.Run("FramesAreCopies", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		first := s.Feed(t0, []byte("AAA\r"))
		s.Feed(t0, []byte("BBB\r"))
		if got := string(first[0]); got != "AAA" {
			t.Errorf("first frame changed by the next feed: got %q, want %q", got, "AAA")
		}
	})
}

func TestSplitter_InterByteTimeout(t *testing.T) {
	t.Run("GapDiscardsPartial", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 200*time.Millisecond)
		s.Feed(t0, []byte("4901"))
		got := s.Feed(t0.Add(250*time.Millisecond), []byte("234567894\r"))
		if want := [][]byte{[]byte("234567894")}; !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("got %q, want %q", got, want)
		}
		if got := s.Drops(); got != (devices.DropCounts{Incomplete: 1}) {
			t.Errorf("drops: got %+v, want one incomplete", got)
		}
	})
	t.Run("ShortGapKeepsPartial", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 200*time.Millisecond)
		s.Feed(t0, []byte("4901"))
		s.Feed(t0.Add(150*time.Millisecond), []byte("23456"))
		got := s.Feed(t0.Add(300*time.Millisecond), []byte("7894\r"))
		if want := [][]byte{[]byte("4901234567894")}; !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("got %q, want %q", got, want)
		}
		if got := s.Drops().Total(); got != 0 {
			t.Errorf("dropped %d, want 0", got)
		}
	})
	t.Run("Expire", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 200*time.Millisecond)
		s.Feed(t0, []byte("ABC"))
		if s.Expire(t0.Add(200 * time.Millisecond)) {
			t.Errorf("Expire at exactly the timeout: got true, want false")
		}
		if !s.Expire(t0.Add(201 * time.Millisecond)) {
			t.Errorf("Expire after the timeout: got false, want true")
		}
		if got := s.Pending(); got != 0 {
			t.Errorf("pending after expiry: got %d, want 0", got)
		}
		if got := s.Drops().Incomplete; got != 1 {
			t.Errorf("incomplete: got %d, want 1", got)
		}
		if s.Expire(t0.Add(time.Hour)) {
			t.Errorf("Expire with nothing pending: got true, want false")
		}
	})
	t.Run("PendingCROnly", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorCRLF, 0, 200*time.Millisecond)
		s.Feed(t0, []byte("ABC\r\n\r"))
		if !s.Expire(t0.Add(time.Second)) {
			t.Errorf("a lone pending CR did not expire")
		}
		got := s.Feed(t0.Add(time.Second), []byte("\nDEF\r\n"))
		// The LF that arrives after the expired CR is a control byte.
		if len(got) != 0 {
			t.Errorf("got %q, want no frame", got)
		}
	})
	t.Run("Reset", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		s.Feed(t0, []byte("ABC"))
		s.Reset()
		got := s.Feed(t0, []byte("DEF\r"))
		if want := [][]byte{[]byte("DEF")}; !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("got %q, want %q", got, want)
		}
		if got := s.Drops().Incomplete; got != 1 {
			t.Errorf("incomplete: got %d, want 1", got)
		}
	})
}

func TestSplitter_Oversize(t *testing.T) {
	t.Run("AtAndOverCap", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 8, 0)
		got := feedAll(s, "12345678\r123456789\rOK\r")
		if want := []string{"12345678", "OK"}; !slices.Equal(got, want) {
			t.Errorf("got %q, want %q", got, want)
		}
		if got := s.Drops(); got != (devices.DropCounts{Oversize: 1}) {
			t.Errorf("drops: got %+v, want one oversize", got)
		}
	})
	t.Run("MemoryBounded", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		chunk := []byte(strings.Repeat("A", 64*1024))
		for i := range 32 { // 2 MiB without a terminator
			s.Feed(t0.Add(time.Duration(i)*time.Millisecond), chunk)
			if got := s.Pending(); got > devices.DefaultMaxFrame {
				t.Fatalf("after %d KiB: holds %d bytes, want at most %d", (i+1)*64, got, devices.DefaultMaxFrame)
			}
		}
		got := s.Feed(t0.Add(time.Second/10), []byte("\r4901234567894\r"))
		if want := [][]byte{[]byte("4901234567894")}; !slices.EqualFunc(got, want, bytes.Equal) {
			t.Errorf("got %q, want %q", got, want)
		}
		if got := s.Drops(); got != (devices.DropCounts{Oversize: 1}) {
			t.Errorf("drops: got %+v, want one oversize", got)
		}
	})
	t.Run("DefaultCap", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
		ok := strings.Repeat("B", devices.DefaultMaxFrame)
		got := feedAll(s, ok+"\r"+ok+"B\r")
		if len(got) != 1 || got[0] != ok {
			t.Errorf("got %d frames, want only the one of %d bytes", len(got), devices.DefaultMaxFrame)
		}
	})
}

func TestSplitter_Binary(t *testing.T) {
	for _, tt := range []struct {
		name  string
		frame string
	}{
		{"NUL", "\x00ABC"},
		{"Tab", "A\tB"},
		{"ESC", "\x1b[31mRED"},
		{"DEL", "AB\x7f"},
		{"HighBit", "caf\xc3\xa9"},
		{"GS", "]C1010123456789012815\x1d10ABC"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := devices.NewSplitter(devices.TerminatorAny, 0, 0)
			got := feedAll(s, tt.frame+"\r49123456\r")
			if want := []string{"49123456"}; !slices.Equal(got, want) {
				t.Errorf("got %q, want %q", got, want)
			}
			if got := s.Drops(); got != (devices.DropCounts{Binary: 1}) {
				t.Errorf("drops: got %+v, want one binary", got)
			}
		})
	}
	t.Run("OversizeWins", func(t *testing.T) {
		s := devices.NewSplitter(devices.TerminatorAny, 4, 0)
		feedAll(s, "\x00\x00\x00\x00\x00\r")
		if got := s.Drops(); got != (devices.DropCounts{Oversize: 1}) {
			t.Errorf("drops: got %+v, want one oversize", got)
		}
	})
}

func TestParseTerminator(t *testing.T) {
	for _, tt := range []struct {
		in   string
		want devices.Terminator
	}{
		{"", devices.TerminatorAny}, {"any", devices.TerminatorAny}, {"CR", devices.TerminatorCR},
		{"lf", devices.TerminatorLF}, {" CrLf ", devices.TerminatorCRLF},
	} {
		got, err := devices.ParseTerminator(tt.in)
		if err != nil || got != tt.want {
			t.Errorf("ParseTerminator(%q): got %v, %v; want %v, nil", tt.in, got, err, tt.want)
		}
		if back, err := devices.ParseTerminator(got.String()); err != nil || back != got {
			t.Errorf("ParseTerminator(%v.String()): got %v, %v", got, back, err)
		}
	}
	if _, err := devices.ParseTerminator("tab"); err == nil {
		t.Errorf("ParseTerminator(%q): got no error", "tab")
	}
}
