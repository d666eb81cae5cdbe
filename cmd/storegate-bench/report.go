package main

import (
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
)

// The targets on a 2-core machine.
const (
	targetNoopRatio  = 0.5
	targetP99MS      = 10.0
	targetPeakMiB    = 100.0
	targetStartupMS  = 1000.0
	statusMet        = "met"
	statusMissed     = "MISSED"
	statusNotMeasure = "not measured"
)

// CommitCompare sets the group committer storecache and central share
// (internal/groupcommit), committing as soon as the previous commit ends,
// against bbolt's DB.Batch, which waits up to its MaxBatchDelay to fill a
// batch, on the same raw records at one number of lanes; Storecache is
// storecache.CommitDecision through that committer, with its checks.
type CommitCompare struct {
	Lanes      int     `json:"lanes"`
	Group      Rate    `json:"group_commit"`
	DBBatch    Rate    `json:"db_batch"`
	Faster     string  `json:"faster"`
	Speedup    float64 `json:"speedup"`
	Storecache Rate    `json:"storecache_committer"`
}

func compareCommits(lim *Limits) []CommitCompare {
	var out []CommitCompare
	for _, ll := range lim.ByLanes {
		c := CommitCompare{Lanes: ll.Lanes, Group: ll.Group, DBBatch: ll.BoltBatch, Storecache: ll.Committer}
		if c.Group.PerS >= c.DBBatch.PerS {
			c.Faster, c.Speedup = "group commit", ratio(c.Group.PerS, c.DBBatch.PerS)
		} else {
			c.Faster, c.Speedup = "DB.Batch", ratio(c.DBBatch.PerS, c.Group.PerS)
		}
		out = append(out, c)
	}
	return out
}

// Target is one of the targets and how this run did.
type Target struct {
	Name   string `json:"name"`
	Value  string `json:"value"`
	Want   string `json:"want"`
	Status string `json:"status"`
	Note   string `json:"note,omitempty"`
}

func verdict(ok bool) string {
	if ok {
		return statusMet
	}
	return statusMissed
}

// checkTargets holds the run against the targets.
func checkTargets(cfg *Config, res *Results) []Target {
	var out []Target
	most := slices.Max(cfg.Lanes)
	for _, scenario := range []string{scenarioOnline, scenarioOffline} {
		run := findRun(res.Authorize, scenario, most)
		if run == nil {
			continue
		}
		note := ""
		if scenario == scenarioOffline && run.Approved == 0 {
			note = "offline path on this build declines central_unavailable"
		}
		noop := res.Limits.at(most).GRPCNoop
		ceiling := ratio(float64(res.Machine.GOMAXPROCS)*1e6, run.CPUPerOp)
		cpuNote := fmt.Sprintf("%.0f µs of CPU per sale (a no-op call: %.0f µs): %d CPUs allow at most %s, a ratio of %.2f",
			run.CPUPerOp, noop.CPUPerOp, res.Machine.GOMAXPROCS, perS(ceiling), ratio(ceiling, noop.PerS))
		if note != "" {
			cpuNote = note + "; " + cpuNote
		}
		out = append(out,
			Target{
				Name:   fmt.Sprintf("%s, %d lanes: throughput / no-op gRPC", scenario, most),
				Value:  fmt.Sprintf("%.2f (%s / %s)", run.NoopRatio, perS(run.PerS), perS(noop.PerS)),
				Want:   fmt.Sprintf("≥ %.2f", targetNoopRatio),
				Status: verdict(run.NoopRatio >= targetNoopRatio),
				Note:   cpuNote,
			},
			Target{
				Name:   fmt.Sprintf("%s, %d lanes: p99 latency", scenario, most),
				Value:  fmt.Sprintf("%.2f ms", run.Latency.P99),
				Want:   fmt.Sprintf("< %.0f ms", targetP99MS),
				Status: verdict(run.Latency.P99 < targetP99MS),
				Note:   note,
			})
	}
	mem := Target{Name: "peak memory, storegated process", Want: fmt.Sprintf("< %.0f MiB", targetPeakMiB), Status: statusNotMeasure}
	if res.Process != nil {
		m := res.Process.Memory
		mem.Name = fmt.Sprintf("peak memory, storegated under %d online lanes", res.Process.Run.Lanes)
		mem.Value = fmt.Sprintf("%.1f MiB", m.PeakRSS)
		mem.Status = verdict(m.PeakRSS < targetPeakMiB)
		mem.Note = fmt.Sprintf("VmHWM; at the end %.1f MiB anonymous, %.1f MiB file-backed (binary, mapped store)", m.RSSAnon, m.RSSFile)
	}
	out = append(out, mem)
	st := Target{Name: fmt.Sprintf("start-up with %s decisions", thousands(res.Startup.Decisions)), Want: fmt.Sprintf("< %.0f ms", targetStartupMS)}
	if res.Startup.ProcessCold > 0 {
		worst := max(res.Startup.ProcessCold, res.Startup.ProcessWarm)
		st.Value = fmt.Sprintf("%.1f ms", worst)
		st.Status = verdict(worst < targetStartupMS)
		st.Note = "storegated process, exec until health SERVING, page cache dropped or warm, the slower"
	} else {
		st.Value = fmt.Sprintf("%.1f ms", res.Startup.InProcess)
		st.Status = verdict(res.Startup.InProcess < targetStartupMS)
		st.Note = "in process only (store Open + gateway Open + keyset)"
	}
	out = append(out, st)
	return out
}

func findRun(runs []*AuthorizeRun, scenario string, lanes int) *AuthorizeRun {
	for _, r := range runs {
		if r.Scenario == scenario && r.Lanes == lanes {
			return r
		}
	}
	return nil
}

// thousands formats n with comma separators.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// perS formats a rate.
func perS(v float64) string { return thousands(int(v+0.5)) + "/s" }

// printReport writes the table.
func printReport(w io.Writer, res *Results) {
	m := res.Machine
	fmt.Fprintf(w, "\nstoregate-bench  %s  commit %s  (%.0f s)\n", m.Date, m.Commit, res.Seconds)
	fmt.Fprintf(w, "machine: %s, %d CPUs (GOMAXPROCS %d), %d MiB, Linux %s, %s %s\n", m.CPUModel, m.CPUs, m.GOMAXPROCS, m.MemoryMiB, m.Kernel, m.Go, m.Platform)
	fmt.Fprintf(w, "disk:    %s\n", m.Disk)
	fmt.Fprintf(w, "load:    %.2f at the start, %.2f at the end (1-minute load average; above %d, other work shared the CPUs)\n", m.LoadStart, m.LoadEnd, m.CPUs)
	fmt.Fprintf(w, "POS client, gateway and central all run on these %d CPUs; every commit is durable (fdatasync).\n", m.CPUs)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	section := func(title string) { fmt.Fprintf(tw, "\n%s\n", title) }
	row := func(cells ...string) { fmt.Fprintln(tw, strings.Join(cells, "\t")) }
	// A note is one cell with no tab after it, which tabwriter leaves out
	// of the column widths.
	note := func(format string, args ...any) { fmt.Fprintf(tw, "  "+format+"\n", args...) }

	lim := res.Limits
	section("LIMITS (measured in this run)")
	for _, e := range lim.Ed25519 {
		row(fmt.Sprintf("  Ed25519 verify, %d goroutine(s), token's own bytes", e.Goroutines), perS(e.PerS))
	}
	row(fmt.Sprintf("  whole token check (base45, COSE, CBOR, Ed25519), %d goroutines", lim.TokenVerify.Goroutines), perS(lim.TokenVerify.PerS))
	row("  fsync: 4 KiB write + fdatasync", fmt.Sprintf("p50 %.3f ms", lim.Fsync.P50), perS(lim.FsyncPerS))
	row("  bbolt durable commit, 1 decision per transaction", fmt.Sprintf("p50 %.3f ms", lim.BoltSerial.Latency.P50), perS(lim.BoltSerial.PerS))
	row("  gRPC round trip, no-op unary (health Check), 1 lane", fmt.Sprintf("p50 %.3f ms", lim.RoundTrip.Latency.P50), perS(lim.RoundTrip.PerS))
	fmt.Fprintln(tw)
	row("  lanes", "Ed25519 verify", "bbolt durable, lanes decisions/tx", "gRPC no-op", "no-op CPU/call", "tightest")
	for _, ll := range lim.ByLanes {
		row("  "+strconv.Itoa(ll.Lanes), perS(ll.Ed25519), perS(ll.BoltBatched), perS(ll.GRPCNoop.PerS), fmt.Sprintf("%.0f µs", ll.GRPCNoop.CPUPerOp), ll.Tightest)
	}

	section("AUTHORIZE over gRPC on loopback, durable commits (closed loop: each lane waits for its answer)")
	row("  scenario", "lanes", "throughput", "p50", "p99", "p99.9", "÷ tightest limit", "÷ no-op gRPC", "p99 ÷ (fsync+RTT)", "decisions/tx", "CPU/sale", "CPUs used", "outcomes")
	runs := res.Authorize
	if res.Process != nil {
		runs = append(slices.Clip(runs), res.Process.Run)
	}
	for _, r := range runs {
		name, perTx := r.Scenario, fmt.Sprintf("%.1f", r.PerTx)
		if r == runs[len(runs)-1] && res.Process != nil {
			name, perTx = "online, storegated process", "-"
		}
		row("  "+name, strconv.Itoa(r.Lanes), perS(r.PerS), fmtMS(r.Latency.P50), fmtMS(r.Latency.P99), fmtMS(r.Latency.P999),
			fmt.Sprintf("%.2f (%s)", r.Ratio, r.Tightest), fmt.Sprintf("%.2f", r.NoopRatio), fmt.Sprintf("%.1f", r.FloorRatio),
			perTx, fmt.Sprintf("%.0f µs", r.CPUPerOp), fmt.Sprintf("%.2f", r.CPUs), outcomeText(r))
	}
	note("fsync + RTT = %.3f ms. Online sales also pass through central: a second token check, gRPC call and durable commit.", floorMS(lim))
	note("CPU/sale is the CPU time of POS client, gateway and central together per sale; %d CPUs at that cost cap the throughput.", m.GOMAXPROCS)
	for _, r := range runs {
		if r.TokensOut {
			note("%s at %d lanes ended early: its %s minted tokens ran out.", r.Scenario, r.Lanes, thousands(r.Ops))
		}
	}
	if len(res.Authorize) > 0 {
		if off := findRun(res.Authorize, scenarioOffline, res.Authorize[len(res.Authorize)-1].Lanes); off != nil {
			note("offline path on this build: %s.", off.Path)
		}
	}

	section("COMMITS, same records: group commit (as soon as the previous commit ends) vs bbolt DB.Batch (waits up to MaxBatchDelay 10 ms)")
	row("  lanes", "group commit", "decisions/tx", "p99", "DB.Batch", "decisions/tx", "p99", "faster", "storecache committer", "decisions/tx", "p99")
	for _, c := range res.Commit {
		row("  "+strconv.Itoa(c.Lanes), perS(c.Group.PerS), fmt.Sprintf("%.1f", c.Group.PerTx), fmtMS(c.Group.Latency.P99),
			perS(c.DBBatch.PerS), fmt.Sprintf("%.1f", c.DBBatch.PerTx), fmtMS(c.DBBatch.Latency.P99), fmt.Sprintf("%s ×%.1f", c.Faster, c.Speedup),
			perS(c.Storecache.PerS), fmt.Sprintf("%.1f", c.Storecache.PerTx), fmtMS(c.Storecache.Latency.P99))
	}

	section("OTHER")
	if d := res.Drain; d != nil {
		row("  outbox drain", fmt.Sprintf("%s settlements", perS(d.PerS)), fmt.Sprintf("%s offline captures, batch %d, central on loopback, %.2f s", thousands(d.Settlements), d.Batch, d.Seconds))
	}
	if f := res.Freeze; f != nil {
		row(fmt.Sprintf("  publication fan-out to %s gateways", thousands(f.Gateways)), fmt.Sprintf("p50 %s, p99 %s", fmtMS(f.Latency.P50), fmtMS(f.Latency.P99)),
			fmt.Sprintf("signed freeze-list deltas (%s, %d B), %d publications; last gateway p50 %s, max %s", f.Kind, f.Bytes, f.Publications, fmtMS(f.AllReceivedP50), fmtMS(f.AllReceivedMax)))
	}
	if s := res.StoreSize; s != nil {
		row("  store size", fmt.Sprintf("%.1f MiB per 100,000 decisions", s.MiBPer100k), fmt.Sprintf("%.0f bytes per approval (idempotency record, spent token, settlement, audit record)", s.BytesPerDecision))
	}
	if s := res.Startup; s != nil {
		proc := "process not measured"
		if s.ProcessCold > 0 {
			proc = fmt.Sprintf("storegated process: cold %s, warm %s (empty store %s)", fmtMS(s.ProcessCold), fmtMS(s.ProcessWarm), fmtMS(s.ProcessEmpty))
		}
		row(fmt.Sprintf("  start-up, %s decisions (%.2f GiB)", thousands(s.Decisions), float64(s.StoreBytes)/(1<<30)), proc,
			fmt.Sprintf("in process %s (store open + gateway open + keyset); built in %.0f s", fmtMS(s.InProcess), s.BuildSeconds))
		if s.Memory.PeakRSS > 0 {
			row("  memory after that start-up", fmt.Sprintf("%.1f MiB peak RSS", s.Memory.PeakRSS), "")
		}
	}
	if p := res.Process; p != nil {
		row(fmt.Sprintf("  peak memory, storegated under %d online lanes", p.Run.Lanes), fmt.Sprintf("%.1f MiB (VmHWM)", p.Memory.PeakRSS),
			fmt.Sprintf("at the end: %.1f MiB anonymous, %.1f MiB file-backed (binary, mapped store)", p.Memory.RSSAnon, p.Memory.RSSFile))
	}

	section("TARGETS (2-core machine)")
	row("  target", "value", "want", "status", "")
	for _, t := range res.Targets {
		row("  "+t.Name, t.Value, t.Want, t.Status, t.Note)
	}
	tw.Flush()
}

func fmtMS(v float64) string {
	switch {
	case v >= 100:
		return fmt.Sprintf("%.0f ms", v)
	case v >= 10:
		return fmt.Sprintf("%.1f ms", v)
	default:
		return fmt.Sprintf("%.2f ms", v)
	}
}

func outcomeText(r *AuthorizeRun) string {
	s := fmt.Sprintf("approved %d, declined %d", r.Approved, r.Declined)
	if len(r.Reasons) > 0 {
		s += " (" + reasonList(r.Reasons) + ")"
	}
	if r.Errors > 0 {
		s += fmt.Sprintf(", errors %d: %s", r.Errors, r.FirstError)
	}
	return s
}
