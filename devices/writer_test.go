package devices_test

import (
	"io"
	"path/filepath"
	"testing"
	"time"

	"storegate/devices"
)

// readMaster reads n bytes that the slave side wrote from the scanner's
// master side.
func (s *scanner) readMaster(n int) string {
	s.t.Helper()
	if err := s.master.SetReadDeadline(time.Now().Add(waitLimit)); err != nil {
		s.t.Fatal(err)
	}
	buf := make([]byte, n)
	if _, err := io.ReadFull(s.master, buf); err != nil {
		s.t.Fatalf("read pty master: %v (got %q)", err, buf)
	}
	return string(buf)
}

func TestWriteFrame(t *testing.T) {
	for _, tt := range []struct {
		name, text, aim, term, want string
	}{
		{"CR", testToken, "]Q1", "\r", "]Q1" + testToken + "\r"},
		{"LF", "4901234567894", "]E0", "\n", "]E04901234567894\n"},
		{"CRLF", "49123456", "", "\r\n", "49123456\r\n"},
		{"Named", "49123456", "", "crlf", "49123456\r\n"},
		{"Default", "49123456", "", "", "49123456\r"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// A cooked slave would turn LF into CRLF: WriteFrame must make
			// the port raw itself.
			s := newCookedScanner(t)
			if err := devices.WriteFrame(s.link, tt.text, tt.aim, tt.term); err != nil {
				t.Fatal(err)
			}
			if got := s.readMaster(len(tt.want)); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestWriteFrame_Invalid(t *testing.T) {
	s := newScanner(t)
	for _, tt := range []struct {
		name, path, text, aim, term string
	}{
		{"EmptyText", s.link, "", "", "\r"},
		{"TextWithCR", s.link, "AB\rCD", "", "\r"},
		{"TextWithNUL", s.link, "AB\x00", "", "\r"},
		{"BadAIM", s.link, "49123456", "Q1", "\r"},
		{"LongAIM", s.link, "49123456", "]Q10", "\r"},
		{"BadTerminator", s.link, "49123456", "", "\t"},
		{"NoDevice", filepath.Join(t.TempDir(), "none"), "49123456", "", "\r"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if err := devices.WriteFrame(tt.path, tt.text, tt.aim, tt.term); err == nil {
				t.Error("got nil, want an error")
			}
		})
	}
}

// TestWriteFrame_ReachesReader plays storegatectl scan against a running
// Reader: two ptys joined as socat would join them, WriteFrame on one end, the
// lane's Reader on the other.
func TestWriteFrame_ReachesReader(t *testing.T) {
	lane1 := newScanner(t)
	wand := newScanner(t)
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		_, _ = io.Copy(lane1.master, wand.master) // ends when wand is unplugged
	}()
	t.Cleanup(func() {
		wand.unplug()
		<-copied
	})

	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: lane1.link}, nil)
	l.waitUp(t)
	if err := devices.WriteFrame(wand.link, testToken, "]Q1", "\r\n"); err != nil {
		t.Fatal(err)
	}
	ev := l.next(t)
	if got, err := l.hub.Take("1", ev.ScanID); err != nil || got != testToken {
		t.Errorf("got %q, %v; want the token", got, err)
	}
	if st := l.reader.Status(); st.Dropped != 0 {
		t.Errorf("dropped: %+v", st.Drops)
	}
}
