package devices

import (
	"fmt"
	"time"

	"github.com/tarm/serial"
)

// Port is an open scanner connection.
//
// Read must return within the read timeout the port was opened with, with
// (0, io.EOF) when no byte arrived in that time; the Reader relies on this to
// notice a cancelled context, because closing a serial port does not wake a
// blocked Read. On a hang-up Read returns an error, or (0, io.EOF) at once,
// again and again.
type Port interface {
	// Read reads the bytes that have arrived, up to len(p). It returns
	// (0, io.EOF) when the read timeout passed with nothing to read and another
	// error when the device failed or went away.
	Read(p []byte) (int, error)

	// Close releases the device. It returns the error of the underlying close,
	// which the Reader only logs.
	Close() error
}

// Opener opens the scanner at path with the given baud rate and read timeout.
// It returns an error when the device is missing, busy or refuses the settings;
// the Reader retries with backoff.
type Opener func(path string, baud int, readTimeout time.Duration) (Port, error)

// OpenSerial is the default Opener: it opens path as a raw 8N1 serial port with
// github.com/tarm/serial, which turns off every kind of line processing (no
// echo, no CR to LF translation) and sets VMIN=0, VTIME=readTimeout, so that
// a Read returns (0, io.EOF) after readTimeout of silence. readTimeout is
// rounded down to tenths of a second, with a floor of 100 ms; a zero
// readTimeout is refused, because a Read without one would block forever and
// Close would not wake it.
func OpenSerial(path string, baud int, readTimeout time.Duration) (Port, error) {
	if readTimeout <= 0 {
		return nil, fmt.Errorf("open %s: a read timeout is required", path)
	}
	if !ValidBaud(baud) {
		return nil, fmt.Errorf("open %s: unsupported baud rate %d", path, baud)
	}
	p, err := serial.OpenPort(&serial.Config{Name: path, Baud: baud, ReadTimeout: readTimeout})
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return p, nil
}

// standardBauds lists the rates a serial scanner is configured with in practice;
// tarm/serial accepts these and a few faster ones.
var standardBauds = map[int]bool{
	1200: true, 2400: true, 4800: true, 9600: true, 19200: true,
	38400: true, 57600: true, 115200: true, 230400: true,
}

// ValidBaud reports whether baud is a standard serial rate that OpenSerial
// accepts.
func ValidBaud(baud int) bool {
	return standardBauds[baud]
}
