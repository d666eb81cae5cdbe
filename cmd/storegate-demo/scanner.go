package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/creack/pty"
)

// scannerLink is two pseudo-terminals joined back to back, like a serial
// cable between a scanner and the register: a frame written to the scanner
// end arrives at the lane end, which storegated opens as lane 1's scanner.
type scannerLink struct {
	// ScannerPath is where storegatectl scan writes, as the scanner would.
	ScannerPath string
	// LanePath is a stable name (a symlink, as udev would make) for the
	// lane end.
	LanePath string
	files    []*os.File
}

func newScannerLink(dir string) (*scannerLink, error) {
	scanMaster, scanSlave, err := pty.Open()
	if err != nil {
		return nil, fmt.Errorf("pseudo-terminal: %w", err)
	}
	laneMaster, laneSlave, err := pty.Open()
	if err != nil {
		scanMaster.Close()
		scanSlave.Close()
		return nil, fmt.Errorf("pseudo-terminal: %w", err)
	}
	l := &scannerLink{
		ScannerPath: scanSlave.Name(),
		LanePath:    filepath.Join(dir, "lane1-scanner"),
		// The slave ends stay open here so that neither side sees a
		// hang-up while the other reopens.
		files: []*os.File{scanMaster, scanSlave, laneMaster, laneSlave},
	}
	if err := os.Symlink(laneSlave.Name(), l.LanePath); err != nil {
		l.Close()
		return nil, err
	}
	go io.Copy(laneMaster, scanMaster) // scanner → lane
	go io.Copy(io.Discard, laneMaster) // whatever the lane end echoes
	return l, nil
}

// Close hangs both ends up.
func (l *scannerLink) Close() {
	for _, f := range l.files {
		f.Close()
	}
}
