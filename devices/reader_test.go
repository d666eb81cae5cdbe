package devices_test

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"storegate/devices"
)

func TestPTY_RawKeepsCR(t *testing.T) {
	s := newScanner(t)
	s.send("A\rB\n")
	buf := make([]byte, 16)
	got := ""
	for len(got) < 4 {
		n, err := s.slave.Read(buf)
		if err != nil {
			t.Fatalf("read slave: %v", err)
		}
		got += string(buf[:n])
	}
	if want := "A\rB\n"; got != want {
		t.Errorf("got %q, want %q: the pty's line discipline changed the bytes", got, want)
	}
}

func TestReader_Terminators(t *testing.T) {
	for _, tt := range []struct {
		name   string
		term   devices.Terminator
		suffix string
	}{
		{"CR", devices.TerminatorCR, "\r"},
		{"LF", devices.TerminatorLF, "\n"},
		{"CRLF", devices.TerminatorCRLF, "\r\n"},
		{"AnyCR", devices.TerminatorAny, "\r"},
		{"AnyLF", devices.TerminatorAny, "\n"},
		{"AnyCRLF", devices.TerminatorAny, "\r\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := newScanner(t)
			l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link, Terminator: tt.term}, nil)
			l.waitUp(t)
			s.send("4901234567894" + tt.suffix + "49123456" + tt.suffix)
			for _, want := range []string{"4901234567894", "49123456"} {
				if ev := l.next(t); ev.Kind != devices.KindProduct || ev.Code != want {
					t.Errorf("got %v %q, want product %q", ev.Kind, ev.Code, want)
				}
			}
			st := l.waitStatus(t, "2 frames", func(s devices.Status) bool { return s.Frames == 2 })
			if st.Dropped != 0 {
				t.Errorf("dropped: got %d, want 0 (%+v)", st.Dropped, st.Drops)
			}
		})
	}
}

func TestReader_AIM(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "7", Device: s.link}, nil)
	l.waitUp(t)

	t.Run("TokenQR", func(t *testing.T) {
		s.send("]Q1" + testToken + "\r")
		ev := l.next(t)
		if ev.Kind != devices.KindPaymentToken || ev.AIM != "]Q1" || ev.Lane != "7" || ev.ScanID == "" {
			t.Fatalf("got %+v, want a held QR token on lane 7", ev)
		}
		if got, err := l.hub.Take("7", ev.ScanID); err != nil || got != testToken {
			t.Errorf("Take: got %q, %v; want the token without its AIM id", got, err)
		}
	})
	t.Run("ProductEAN13", func(t *testing.T) {
		s.send("]E04901234567894\r")
		if ev := l.next(t); ev.Kind != devices.KindProduct || ev.AIM != "]E0" || ev.Code != "4901234567894" {
			t.Errorf("got %+v, want EAN-13 product with AIM ]E0", ev)
		}
	})
	t.Run("TokenCode128Rejected", func(t *testing.T) {
		before := l.reader.Status()
		s.send("]C1" + testToken + "\r]E449123456\r")
		if ev := l.next(t); ev.Kind != devices.KindProduct || ev.Code != "49123456" {
			t.Errorf("got %+v, want the refused token skipped and the EAN-8 delivered", ev)
		}
		st := l.reader.Status()
		if got := st.Drops.Rejected - before.Drops.Rejected; got != 1 {
			t.Errorf("rejected: got %d more, want 1", got)
		}
		if got := st.Dropped - before.Dropped; got != 1 {
			t.Errorf("dropped: got %d more, want 1", got)
		}
		if got := l.hub.Held("7"); got != 0 {
			t.Errorf("held: got %d, want 0", got)
		}
	})
}

func TestReader_FrameInPieces(t *testing.T) {
	t.Run("Reassembled", func(t *testing.T) {
		s := newScanner(t)
		l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
		l.waitUp(t)
		for _, piece := range []string{"]Q1SGP1:6BF", "OXN*TS0BI$ZD-CH1KSL:+", "SGP9%R4ZV%8DOTPEXP", "\r"} {
			s.send(piece)
			time.Sleep(30 * time.Millisecond)
		}
		ev := l.next(t)
		if got, err := l.hub.Take("1", ev.ScanID); err != nil || got != testToken {
			t.Errorf("got %q, %v; want the token reassembled", got, err)
		}
	})
	t.Run("StalledPartialDropped", func(t *testing.T) {
		s := newScanner(t)
		l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link, InterByteTimeout: 50 * time.Millisecond}, nil)
		l.waitUp(t)
		s.send("4901")
		// The partial frame is counted once its timeout passes, even with no
		// further byte: the reader expires it on idle reads.
		l.waitStatus(t, "one incomplete drop", func(s devices.Status) bool { return s.Drops.Incomplete == 1 })
		s.send("49123456\r")
		if ev := l.next(t); ev.Code != "49123456" {
			t.Errorf("got %+v, want the next frame alone", ev)
		}
	})
}

func TestReader_TwoFramesInOneWrite(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
	l.waitUp(t)
	s.send("]Q1" + testToken + "\r\n]E0036000291452\r\n")
	if ev := l.next(t); ev.Kind != devices.KindPaymentToken {
		t.Errorf("first: got %+v, want the token", ev)
	}
	if ev := l.next(t); ev.Kind != devices.KindProduct || ev.Code != "036000291452" {
		t.Errorf("second: got %+v, want the UPC-A", ev)
	}
}

func TestReader_GarbageDropped(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link, MaxFrame: 64}, nil)
	l.waitUp(t)
	s.send(strings.Repeat("X", 5000) + "\r")
	s.send("\x00\x01\xff\xfegarbage\x1b[0m\r")
	s.send("\x00\x00\x00\x00\r")
	s.send("]E04901234567894\r")
	if ev := l.next(t); ev.Code != "4901234567894" {
		t.Errorf("got %+v, want the good frame after the garbage", ev)
	}
	st := l.waitStatus(t, "3 drops", func(s devices.Status) bool { return s.Dropped == 3 })
	if want := (devices.DropCounts{Oversize: 1, Binary: 2}); st.Drops != want {
		t.Errorf("drops: got %+v, want %+v", st.Drops, want)
	}
	if st.Frames != 1 {
		t.Errorf("frames: got %d, want 1", st.Frames)
	}
	if !st.Up {
		t.Errorf("garbage took the scanner down: %+v", st)
	}
}

func TestReader_BadCheckDigit(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
	l.waitUp(t)
	s.send("]E04901234567890\r")
	ev := l.next(t)
	if ev.Kind != devices.KindUnknown || ev.Reason != devices.ReasonCheckDigit || ev.Code != "4901234567890" {
		t.Errorf("got %+v, want unknown with a bad check digit", ev)
	}
}

func TestReader_Idle(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
	since := l.waitUp(t).Since
	// Several read timeouts pass: each returns (0, io.EOF), which must not be
	// taken for a hang-up.
	time.Sleep(5 * devices.DefaultReadTimeout)
	st := l.reader.Status()
	if !st.Up || !st.Since.Equal(since) || st.LastError != "" {
		t.Errorf("after idling: got %+v, want still up since %v with no error", st, since)
	}
	s.send("49123456\r")
	if ev := l.next(t); ev.Code != "49123456" {
		t.Errorf("got %+v, want the scan after idling", ev)
	}
}

func TestReader_UnplugReplug(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
	l.waitUp(t)
	s.send("49123456\r")
	if ev := l.next(t); ev.Code != "49123456" {
		t.Fatalf("before unplug: got %+v", ev)
	}

	s.unplug()
	down := l.waitStatus(t, "down", func(s devices.Status) bool { return !s.Up })
	if down.LastError == "" {
		t.Errorf("down with no LastError: %+v", down)
	}
	t.Logf("hang-up seen as: %s", down.LastError)

	s.plug() // a new pty behind the same symlink
	up := l.waitUp(t)
	if !up.Since.After(down.Since) {
		t.Errorf("Since: got %v, want after %v", up.Since, down.Since)
	}
	s.send("]Q1" + testToken + "\r")
	ev := l.next(t)
	if got, err := l.hub.Take("1", ev.ScanID); err != nil || got != testToken {
		t.Errorf("after replug: got %q, %v; want the token", got, err)
	}
	if st := l.reader.Status(); st.Frames != 2 {
		t.Errorf("frames: got %d, want 2 across the reconnect", st.Frames)
	}
}

func TestReader_DeviceAppearsLater(t *testing.T) {
	link := filepath.Join(t.TempDir(), "scanner")
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: link, BackoffMin: 20 * time.Millisecond, BackoffMax: 100 * time.Millisecond}, nil)
	st := l.waitStatus(t, "an open error", func(s devices.Status) bool { return s.LastError != "" })
	if st.Up {
		t.Errorf("up without a device: %+v", st)
	}
	s := &scanner{t: t, link: link}
	s.plug()
	t.Cleanup(s.unplug)
	l.waitUp(t)
	s.send("49123456\r")
	if ev := l.next(t); ev.Code != "49123456" {
		t.Errorf("got %+v", ev)
	}
}

func TestReader_Cancel(t *testing.T) {
	t.Run("Idle", func(t *testing.T) {
		s := newScanner(t)
		l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
		l.waitUp(t)
		l.stop(t)
		if st := l.reader.Status(); st.Up {
			t.Errorf("up after Run returned: %+v", st)
		}
	})
	t.Run("InBackoff", func(t *testing.T) {
		link := filepath.Join(t.TempDir(), "missing")
		// A backoff far longer than the wait limit: Run must not sit it out.
		l := startReader(t, devices.ReaderConfig{Lane: "1", Device: link, BackoffMin: time.Hour, BackoffMax: time.Hour}, nil)
		l.waitStatus(t, "an open error", func(s devices.Status) bool { return s.LastError != "" })
		l.stop(t)
	})
	t.Run("AlreadyRunning", func(t *testing.T) {
		s := newScanner(t)
		l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
		l.waitUp(t)
		if err := l.reader.Run(context.Background()); err == nil {
			t.Error("second Run: got nil, want an error")
		}
	})
}

// fakePort is a Port whose reads fail as told.
type fakePort struct {
	reads  *atomic.Int64
	read   func() (int, error)
	closed atomic.Bool
}

func (p *fakePort) Read(b []byte) (int, error) {
	p.reads.Add(1)
	return p.read()
}

func (p *fakePort) Close() error {
	p.closed.Store(true)
	return nil
}

func TestReader_HangUp(t *testing.T) {
	for _, tt := range []struct {
		name    string
		read    func() (int, error)
		wantErr string
	}{
		// A hung-up tty whose path is still there (a pty number reused, a
		// USB node udev has not removed yet) ends reads at once, forever.
		{"FastEOF", func() (int, error) { return 0, io.EOF }, "hung up"},
		{"EIO", func() (int, error) {
			return 0, &os.PathError{Op: "read", Path: "/dev/ttyACM0", Err: syscall.EIO}
		}, "input/output error"},
		{"ENXIO", func() (int, error) {
			return 0, &os.PathError{Op: "read", Path: "/dev/ttyACM0", Err: syscall.ENXIO}
		}, "no such device or address"},
		{"ZeroNil", func() (int, error) { return 0, nil }, "hung up"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			device := filepath.Join(t.TempDir(), "ttyACM0")
			if err := os.WriteFile(device, nil, 0o600); err != nil {
				t.Fatal(err)
			}
			var opens, reads atomic.Int64
			opener := func(path string, baud int, readTimeout time.Duration) (devices.Port, error) {
				if path != device || baud != devices.DefaultBaud || readTimeout != devices.DefaultReadTimeout {
					t.Errorf("opened %q at %d baud, %v; want %q, %d, %v", path, baud, readTimeout, device, devices.DefaultBaud, devices.DefaultReadTimeout)
				}
				opens.Add(1)
				return &fakePort{reads: &reads, read: tt.read}, nil
			}
			l := startReader(t, devices.ReaderConfig{
				Lane: "1", Device: device,
				BackoffMin: 10 * time.Millisecond, BackoffMax: 40 * time.Millisecond,
			}, opener)
			st := l.waitStatus(t, "reopened", func(devices.Status) bool { return opens.Load() >= 3 })
			if !strings.Contains(st.LastError, tt.wantErr) {
				t.Errorf("LastError: got %q, want it to mention %q", st.LastError, tt.wantErr)
			}
			// No busy loop: a handful of reads per reopen, reopens paced by
			// the backoff, so a few hundred reads at most in this time.
			time.Sleep(300 * time.Millisecond)
			if got := reads.Load(); got > 1000 {
				t.Errorf("reads: got %d in about 300ms, want a few per reopen", got)
			}
		})
	}
}

func TestReader_DeviceGone(t *testing.T) {
	device := filepath.Join(t.TempDir(), "ttyACM0")
	if err := os.WriteFile(device, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	var reads atomic.Int64
	port := &fakePort{reads: &reads, read: func() (int, error) {
		time.Sleep(devices.DefaultReadTimeout) // an idle read timeout
		return 0, io.EOF
	}}
	opener := func(string, int, time.Duration) (devices.Port, error) { return port, nil }
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: device, BackoffMin: time.Hour, BackoffMax: time.Hour}, opener)
	l.waitUp(t)
	time.Sleep(3 * devices.DefaultReadTimeout)
	if st := l.reader.Status(); !st.Up {
		t.Fatalf("idle timeouts with the device present took it down: %+v", st)
	}
	if err := os.Remove(device); err != nil {
		t.Fatal(err)
	}
	st := l.waitStatus(t, "down", func(s devices.Status) bool { return !s.Up })
	if !strings.Contains(st.LastError, "device gone") {
		t.Errorf("LastError: got %q, want device gone", st.LastError)
	}
	if !port.closed.Load() {
		t.Error("the hung-up port was not closed")
	}
}

func TestReader_NeverLogsCredential(t *testing.T) {
	s := newScanner(t)
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: s.link}, nil)
	l.waitUp(t)
	code := "98765432109876543210"
	s.send("]Q1" + testToken + "\r" + code + "\r]C0" + testToken + "X\r49123456\r")
	for range 3 {
		l.next(t)
	}
	// The product comes last; once its line is logged, all the others are.
	logs := l.logs.waitFor(t, "code=49123456")
	for _, secret := range []string{testToken, code, strings.TrimPrefix(testToken, devices.TokenPrefix)[:12]} {
		if strings.Contains(logs, secret) {
			t.Errorf("logs contain %q:\n%s", secret, logs)
		}
	}
	for _, want := range []string{devices.Fingerprint(testToken), "****3210", devices.Fingerprint(testToken + "X")} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
}

// A configuration that cannot work is refused by Manager.Add, at start, and
// by Run, naming the field.
func TestReader_Invalid(t *testing.T) {
	hub := devices.NewScanHub()
	for _, tt := range []struct {
		name  string
		cfg   devices.ReaderConfig
		field string
	}{
		{"NoLane", devices.ReaderConfig{Device: "/dev/ttyACM0"}, "Lane"},
		{"NoDevice", devices.ReaderConfig{Lane: "1"}, "Device"},
		{"Baud", devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM0", Baud: 9601}, "Baud"},
		{"Terminator", devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM0", Terminator: 9}, "Terminator"},
		{"ReadTimeout", devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM0", ReadTimeout: time.Millisecond}, "ReadTimeout"},
		{"Backoff", devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM0", BackoffMin: time.Second, BackoffMax: time.Millisecond}, "Backoff"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := devices.NewManager(hub).Add(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Add: got %v, want an error naming %s", err, tt.field)
			}
			if err := devices.NewReader(tt.cfg, hub).Run(t.Context()); err == nil || !strings.Contains(err.Error(), tt.field) {
				t.Errorf("Run: got %v, want an error naming %s", err, tt.field)
			}
		})
	}
	valid := devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM0"}
	if _, err := devices.NewManager(nil).Add(valid); err == nil {
		t.Error("Add with a nil hub: got no error")
	}
	if err := devices.NewReader(valid, nil).Run(t.Context()); err == nil {
		t.Error("Run with a nil hub: got no error")
	}
}

func TestOpenSerial(t *testing.T) {
	t.Run("ReadTimeout", func(t *testing.T) {
		s := newScanner(t)
		p, err := devices.OpenSerial(s.link, devices.DefaultBaud, devices.DefaultReadTimeout)
		if err != nil {
			t.Fatal(err)
		}
		defer p.Close()
		start := time.Now()
		n, err := p.Read(make([]byte, 8))
		if n != 0 || !errors.Is(err, io.EOF) {
			t.Errorf("idle read: got %d, %v; want 0, io.EOF", n, err)
		}
		if time.Since(start) < devices.DefaultReadTimeout/2 {
			t.Errorf("idle read returned after %v, want about %v", time.Since(start), devices.DefaultReadTimeout)
		}
	})
	t.Run("Errors", func(t *testing.T) {
		s := newScanner(t)
		if _, err := devices.OpenSerial(s.link, devices.DefaultBaud, 0); err == nil {
			t.Error("no read timeout: got no error")
		}
		if _, err := devices.OpenSerial(s.link, 12345, devices.DefaultReadTimeout); err == nil {
			t.Error("odd baud: got no error")
		}
		if _, err := devices.OpenSerial(filepath.Join(t.TempDir(), "none"), devices.DefaultBaud, devices.DefaultReadTimeout); err == nil {
			t.Error("missing device: got no error")
		}
	})
}

func TestReader_OpenerFault(t *testing.T) {
	var opens atomic.Int64
	opener := func(string, int, time.Duration) (devices.Port, error) {
		opens.Add(1)
		return nil, nil // a broken Opener must not crash the Reader
	}
	l := startReader(t, devices.ReaderConfig{Lane: "1", Device: "/dev/ttyACM0", BackoffMin: 10 * time.Millisecond, BackoffMax: 20 * time.Millisecond}, opener)
	st := l.waitStatus(t, "retried", func(devices.Status) bool { return opens.Load() >= 3 })
	if st.Up || !strings.Contains(st.LastError, "no port") {
		t.Errorf("got %+v, want down with the opener's fault", st)
	}
}
