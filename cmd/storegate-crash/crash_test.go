package main

import (
	"context"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// logWriter sends the run's output to the test log, line by line.
type logWriter struct{ t *testing.T }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// buildDaemons builds storegated and storegate-hq into a temporary folder,
// under the race detector when the test runs under it.
func buildDaemons(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	args := []string{"build", "-o", dir + "/"}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, "storegate/cmd/storegated", "storegate/cmd/storegate-hq")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("build the daemons: %v", err)
	}
	return dir
}

// mustRun runs the test cfg describes, its output in the test log, and
// fails the test unless the run found nothing wrong.
func mustRun(t *testing.T, cfg Config) *Report {
	t.Helper()
	cfg.Out = logWriter{t}
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()
	rep, err := Run(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if !rep.OK() {
		t.Fatalf("lost %d, duplicated %d, %d problems (seed %d): see the report above; logs in %s", rep.Lost, rep.Duplicated, len(rep.Problems), rep.Seed, cfg.Dir)
	}
	return rep
}

// The short crash test of `make test`: 20 kills of storegated under eight
// lanes, HQ down four times. `make crashtest` runs the long one.
func TestCrash_Short(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Bin = buildDaemons(t)
	cfg.Dir = t.TempDir()
	cfg.Kills = 20
	cfg.OutageEvery = 5
	rep := mustRun(t, cfg)
	if rep.Kills < 20 || rep.Outages < 4 {
		t.Errorf("%d kills and %d outages, want at least 20 and 4", rep.Kills, rep.Outages)
	}
	// The run must have exercised both paths and the caps, or it proves
	// little.
	if rep.ApprovedOnline == 0 || rep.ApprovedOffline == 0 || rep.DeclinedBy["offline_limit"] == 0 || rep.CapturesBooked == 0 {
		t.Errorf("approved online %d, offline %d, declined at an offline cap %d, booked %d: want each above zero",
			rep.ApprovedOnline, rep.ApprovedOffline, rep.DeclinedBy["offline_limit"], rep.CapturesBooked)
	}
}
