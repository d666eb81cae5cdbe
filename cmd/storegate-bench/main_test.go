package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	main "storegate/cmd/storegate-bench"
)

// TestMain_Tiny runs every part of the harness at toy sizes and checks that
// the table and the JSON hold every figure. It asserts no figure's value:
// on a shared machine under the race detector they mean nothing.
func TestMain_Tiny(t *testing.T) {
	m := main.NewMain()
	m.Config = main.TinyConfig()
	m.Config.Out = filepath.Join(t.TempDir(), "bench.json")
	m.Config.TempDir = t.TempDir()
	var stdout, stderr bytes.Buffer
	m.Stdout, m.Stderr = &stdout, &stderr
	if err := m.Run(context.Background()); err != nil {
		t.Fatalf("Run: %v\n%s", err, stderr.String())
	}

	b, err := os.ReadFile(m.Config.Out)
	if err != nil {
		t.Fatal(err)
	}
	var res main.Results
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatalf("JSON: %v", err)
	}
	lim := res.Limits
	if lim == nil || len(lim.Ed25519) == 0 || lim.TokenVerify.PerS <= 0 || lim.FsyncPerS <= 0 || lim.BoltSerial.PerS <= 0 || lim.RoundTrip.PerS <= 0 {
		t.Fatalf("limits incomplete: %+v", lim)
	}
	if got, want := len(lim.ByLanes), len(m.Config.Lanes); got != want {
		t.Fatalf("limits at %d lane counts, want %d", got, want)
	}
	for _, ll := range lim.ByLanes {
		if ll.Ed25519 <= 0 || ll.BoltBatched <= 0 || ll.GRPCNoop.PerS <= 0 || ll.Group.PerS <= 0 || ll.BoltBatch.PerS <= 0 || ll.Committer.PerS <= 0 || ll.Tightest == "" {
			t.Errorf("limits at %d lanes incomplete: %+v", ll.Lanes, ll)
		}
	}

	if got, want := len(res.Authorize), 2*len(m.Config.Lanes); got != want {
		t.Fatalf("%d Authorize runs, want %d", got, want)
	}
	for _, r := range res.Authorize {
		if r.Ops == 0 || r.Errors != 0 || r.Approved+r.Declined != r.Ops || r.Ratio <= 0 || r.FloorRatio <= 0 || r.Latency.Samples != r.Ops {
			t.Errorf("run %s/%d: %+v", r.Scenario, r.Lanes, r)
		}
		switch r.Scenario {
		case "online":
			if r.Approved != r.Ops {
				t.Errorf("online, %d lanes: approved %d of %d (%v)", r.Lanes, r.Approved, r.Ops, r.Reasons)
			}
		case "offline":
			// Without offline caps the offline path declines every sale,
			// and the run must say so; with them, every bench sale is
			// within the token's allowance and the caps.
			switch {
			case !res.OfflineCaps && (r.Reasons["DECLINE_REASON_CENTRAL_UNAVAILABLE"] != r.Ops || !strings.Contains(r.Path, "central_unavailable")):
				t.Errorf("offline, %d lanes, no offline caps: reasons %v, path %q", r.Lanes, r.Reasons, r.Path)
			case res.OfflineCaps && r.Approved != r.Ops:
				t.Errorf("offline, %d lanes, offline caps: approved %d of %d (%v)", r.Lanes, r.Approved, r.Ops, r.Reasons)
			}
		default:
			t.Errorf("unknown scenario %q", r.Scenario)
		}
	}
	if len(res.Commit) != len(m.Config.Lanes) {
		t.Errorf("commit comparison at %d lane counts, want %d", len(res.Commit), len(m.Config.Lanes))
	}
	if d := res.Drain; d == nil || d.Settlements != m.Config.Settlements || d.PerS <= 0 || d.Refused != 0 {
		t.Errorf("drain: %+v, want %d settlements forwarded and none refused", d, m.Config.Settlements)
	}
	if f := res.Freeze; f == nil || f.Latency.Samples != m.Config.Gateways*m.Config.Publications {
		t.Errorf("fan-out: %+v, want %d receipts", f, m.Config.Gateways*m.Config.Publications)
	}
	if s := res.StoreSize; s == nil || s.Decisions != m.Config.SizeDecisions || s.Bytes <= 0 {
		t.Errorf("store size: %+v", s)
	}
	if s := res.Startup; s == nil || s.Decisions != m.Config.StartupDecisions || s.InProcess <= 0 {
		t.Errorf("start-up: %+v", s)
	}
	if len(res.Targets) != 6 {
		t.Errorf("%d targets, want 6: %+v", len(res.Targets), res.Targets)
	}
	if res.Machine.CPUs <= 0 || res.Machine.Go == "" {
		t.Errorf("machine: %+v", res.Machine)
	}

	table := stdout.String()
	for _, want := range []string{"LIMITS", "AUTHORIZE", "COMMITS", "OTHER", "TARGETS", "offline path on this build", "outbox drain", "publication fan-out", "store size", "start-up", "CPU/sale"} {
		if !strings.Contains(table, want) {
			t.Errorf("table lacks %q:\n%s", want, table)
		}
	}
}
