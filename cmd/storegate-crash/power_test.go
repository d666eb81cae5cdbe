package main

import (
	"context"
	"os"
	"os/exec"
	"testing"
	"time"

	"storegate/internal/lazyfs"
)

// skipWithoutFUSE skips a power test where a lazy file system cannot be
// mounted.
func skipWithoutFUSE(t *testing.T) {
	t.Helper()
	if err := lazyfs.Probe(); err != nil {
		t.Skipf("no power test here: FUSE cannot be mounted (%v); it needs /dev/fuse and root, or fusermount3 (Debian's fuse3)", err)
	}
}

// The short power test of `make test`: 12 power cuts under eight lanes, HQ
// down three times. `make powertest` runs the long one.
func TestPower_Short(t *testing.T) {
	skipWithoutFUSE(t)
	cfg := DefaultConfig()
	cfg.Bin = buildDaemons(t)
	cfg.Dir = t.TempDir()
	cfg.PowerCuts = 12
	cfg.OutageEvery = 4
	rep := mustRun(t, cfg)
	p := rep.Power
	if p == nil || p.Cuts < 12 || rep.Outages < 3 {
		t.Fatalf("power report %+v, %d outages: want at least 12 cuts and 3 outages", p, rep.Outages)
	}
	// Both daemons must have synced through the lazy file systems, and the
	// run sold both ways, or it proves little. (Whether a cut finds a commit
	// part way is chance; TestPower_CatchesBrokenOrdering shows that the
	// cuts drop what was not synced.)
	if p.Store.FileSyncs == 0 || p.HQ.FileSyncs == 0 || p.Store.DirSyncs == 0 || p.HQ.DirSyncs == 0 {
		t.Errorf("disks: store %+v, HQ %+v; want file and folder syncs on both", p.Store, p.HQ)
	}
	if rep.ApprovedOnline == 0 || rep.ApprovedOffline == 0 || rep.CapturesBooked == 0 {
		t.Errorf("approved online %d, offline %d, booked %d: want each above zero", rep.ApprovedOnline, rep.ApprovedOffline, rep.CapturesBooked)
	}
}

// TestPower_CatchesBrokenOrdering runs the power test against storegated
// built with an ordering broken on purpose (storecache/broken.go): it must
// fail.
func TestPower_CatchesBrokenOrdering(t *testing.T) {
	skipWithoutFUSE(t)
	for _, tc := range []struct{ name, tag string }{
		{"AnswerBeforeFsync", "powertest_nosync"},
		{"NoFolderSyncOnCreate", "powertest_nodirsync"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			bin := t.TempDir()
			// Without the race detector: the ordering is what is tested,
			// and the build is quicker.
			cmd := exec.Command("go", "build", "-tags", tc.tag, "-o", bin+"/", "storegate/cmd/storegated", "storegate/cmd/storegate-hq")
			cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
			if err := cmd.Run(); err != nil {
				t.Fatalf("build with -tags %s: %v", tc.tag, err)
			}
			cfg := DefaultConfig()
			cfg.Bin, cfg.Dir = bin, t.TempDir()
			cfg.PowerCuts = 8
			cfg.OutageEvery = 0
			cfg.Out = logWriter{t}
			ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
			defer cancel()
			rep, err := Run(ctx, cfg)
			switch {
			case err != nil:
				t.Logf("caught: the run could not go on: %v", err)
			case rep.OK():
				t.Fatalf("the power test passed storegated built with -tags %s (seed %d)", tc.tag, rep.Seed)
			default:
				t.Logf("caught: lost %d, duplicated %d, %d problems", rep.Lost, rep.Duplicated, len(rep.Problems))
			}
		})
	}
}
