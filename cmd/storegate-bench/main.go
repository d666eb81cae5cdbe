// Command storegate-bench measures storegate against the physical limits of
// the machine it runs on, in one run: Authorize over gRPC on loopback with
// durable commits, online and offline, at several numbers of concurrent
// lanes; the limits of the work one Authorize does (Ed25519 verifications,
// durable bbolt commits of the same records, no-op gRPC calls); the outbox
// drain, the fan-out of an HQ publication to many gateways, the store's size
// and the gateway's start-up on a big store and its peak memory. It prints a
// table and writes the figures as JSON. `make bench` runs it.
//
// Client, gateway and central share this machine's cores: the figures are
// what one host does with all three on it.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	m := NewMain()
	if err := m.ParseFlags(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(0)
		}
		fmt.Fprintln(os.Stderr, "storegate-bench:", err)
		os.Exit(2)
	}
	if err := m.Run(ctx); err != nil {
		fmt.Fprintln(os.Stderr, "storegate-bench:", err)
		os.Exit(1)
	}
}

// Config sizes a run. DefaultConfig is `make bench`; TinyConfig proves the
// harness works in a few seconds.
type Config struct {
	// Out is the JSON file written; empty writes none.
	Out string `json:"-"`
	// Lanes are the concurrencies of the Authorize runs.
	Lanes []int `json:"lanes"`
	// Duration is each Authorize run's length.
	Duration time.Duration `json:"duration"`
	// LimitDuration is each limit measurement's length.
	LimitDuration time.Duration `json:"limit_duration"`
	// MaxTokens caps the tokens minted for one Authorize run.
	MaxTokens int `json:"max_tokens"`
	// Settlements is the outbox backlog drained.
	Settlements int `json:"settlements"`
	// Gateways is the number of policy streams a publication fans out to,
	// Publications the number of publications timed.
	Gateways     int `json:"gateways"`
	Publications int `json:"publications"`
	// SizeDecisions is the number of decisions the store size is given
	// for; StartupDecisions the number the start-up store holds.
	SizeDecisions    int `json:"size_decisions"`
	StartupDecisions int `json:"startup_decisions"`
	// Storegated is the storegated binary for the process figures: empty
	// builds it with the go command, "none" skips them.
	Storegated string `json:"-"`
	// ProfileDir, when set, receives a CPU profile of each Authorize run.
	ProfileDir string `json:"-"`
	// TempDir is where the stores go; empty means the system's.
	TempDir string `json:"-"`
	// Keep keeps the temporary directory.
	Keep bool `json:"-"`
}

// DefaultConfig is what `make bench` runs: about three minutes on two
// cores.
func DefaultConfig() Config {
	return Config{
		Out:              "bench-results/bench.json",
		Lanes:            []int{1, 8, 64},
		Duration:         3 * time.Second,
		LimitDuration:    time.Second,
		MaxTokens:        40_000,
		Settlements:      20_000,
		Gateways:         1_000,
		Publications:     5,
		SizeDecisions:    100_000,
		StartupDecisions: 1_000_000,
	}
}

// TinyConfig runs every part of the harness on toy sizes, to prove that it
// works; its figures mean nothing.
func TinyConfig() Config {
	return Config{
		Lanes:            []int{1, 4},
		Duration:         150 * time.Millisecond,
		LimitDuration:    50 * time.Millisecond,
		MaxTokens:        300,
		Settlements:      300,
		Gateways:         10,
		Publications:     2,
		SizeDecisions:    500,
		StartupDecisions: 1_000,
		Storegated:       "none",
	}
}

// Accounts returns how many accounts central funds: one per lane, and at
// least the accounts benchDecision names.
func (c *Config) Accounts() int { return max(slices.Max(c.Lanes), decisionAccounts) }

// Validate checks the sizes.
func (c *Config) Validate() error {
	switch {
	case len(c.Lanes) == 0:
		return errors.New("lanes: at least one")
	case slices.Min(c.Lanes) < 1:
		return errors.New("lanes: each at least 1")
	case c.Duration <= 0 || c.LimitDuration <= 0:
		return errors.New("duration and limit-duration must be positive")
	case c.MaxTokens < 1 || c.Settlements < 1 || c.Gateways < 1 || c.Publications < 1:
		return errors.New("max-tokens, settlements, gateways and publications must be at least 1")
	case c.SizeDecisions < 1 || c.StartupDecisions < c.SizeDecisions:
		return errors.New("size-decisions must be at least 1 and startup-decisions at least size-decisions")
	}
	return nil
}

// Main is the harness.
type Main struct {
	Config Config
	Stdout io.Writer
	// Stderr receives progress lines.
	Stderr io.Writer
}

// NewMain returns a Main with DefaultConfig.
func NewMain() *Main {
	return &Main{Config: DefaultConfig(), Stdout: os.Stdout, Stderr: os.Stderr}
}

// lanesFlag is a comma-separated list of lane counts.
type lanesFlag struct{ dst *[]int }

func (f lanesFlag) String() string {
	if f.dst == nil {
		return ""
	}
	s := make([]string, len(*f.dst))
	for i, v := range *f.dst {
		s[i] = strconv.Itoa(v)
	}
	return strings.Join(s, ",")
}

func (f lanesFlag) Set(v string) error {
	var out []int
	for p := range strings.SplitSeq(v, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(p))
		if err != nil {
			return fmt.Errorf("lanes: %q is not a number", p)
		}
		out = append(out, n)
	}
	*f.dst = out
	return nil
}

// ParseFlags reads the flags over the default configuration.
func (m *Main) ParseFlags(args []string) error {
	fs := flag.NewFlagSet("storegate-bench", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	tiny := fs.Bool("tiny", false, "toy sizes, to check that the harness works (figures mean nothing)")
	c := &m.Config
	fs.StringVar(&c.Out, "out", c.Out, "JSON results file (empty: none)")
	fs.Var(lanesFlag{&c.Lanes}, "lanes", "concurrent lanes of the Authorize runs, comma-separated")
	fs.DurationVar(&c.Duration, "duration", c.Duration, "length of each Authorize run")
	fs.DurationVar(&c.LimitDuration, "limit-duration", c.LimitDuration, "length of each limit measurement")
	fs.IntVar(&c.MaxTokens, "max-tokens", c.MaxTokens, "most tokens minted for one Authorize run")
	fs.IntVar(&c.Settlements, "settlements", c.Settlements, "outbox backlog drained")
	fs.IntVar(&c.Gateways, "gateways", c.Gateways, "policy streams a publication fans out to")
	fs.IntVar(&c.Publications, "publications", c.Publications, "publications timed")
	fs.IntVar(&c.SizeDecisions, "size-decisions", c.SizeDecisions, "decisions the store size is measured at")
	fs.IntVar(&c.StartupDecisions, "startup-decisions", c.StartupDecisions, "decisions in the store start-up is timed on")
	fs.StringVar(&c.Storegated, "storegated", c.Storegated, `storegated binary for the process figures ("": build it, "none": skip them)`)
	fs.StringVar(&c.ProfileDir, "profile-dir", c.ProfileDir, "write a CPU profile of each Authorize run here")
	fs.StringVar(&c.TempDir, "tmp", c.TempDir, "directory for the temporary stores (default: the system's)")
	fs.BoolVar(&c.Keep, "keep", c.Keep, "keep the temporary stores")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *tiny {
		// Toy sizes, under any flag given with --tiny.
		given := map[string]string{}
		fs.Visit(func(f *flag.Flag) { given[f.Name] = f.Value.String() })
		out := c.Out
		*c = TinyConfig()
		c.Out = out
		for name, v := range given {
			if err := fs.Set(name, v); err != nil {
				return err
			}
		}
	}
	return c.Validate()
}

// Results is everything one run measured; it is the JSON file.
type Results struct {
	Machine   Machine         `json:"machine"`
	Config    Config          `json:"config"`
	Limits    *Limits         `json:"limits"`
	Authorize []*AuthorizeRun `json:"authorize"`
	Commit    []CommitCompare `json:"commit_strategies"`
	Drain     *Drain          `json:"outbox_drain"`
	Freeze    *Freeze         `json:"freeze_propagation"`
	StoreSize *StoreSize      `json:"store_size"`
	Startup   *Startup        `json:"startup"`
	Process   *ProcessRun     `json:"storegated_process,omitempty"`
	// OfflineCaps says whether the offline scenario's gateway had offline
	// caps (enableOfflineCaps); without them it declines every sale.
	OfflineCaps bool     `json:"offline_caps"`
	Targets     []Target `json:"targets"`
	Seconds     float64  `json:"seconds"`
}

// Run measures everything, prints the table and writes the JSON file.
func (m *Main) Run(ctx context.Context) error {
	cfg := &m.Config
	if err := cfg.Validate(); err != nil {
		return err
	}
	start := time.Now()
	logf := func(format string, args ...any) {
		fmt.Fprintf(m.Stderr, "%6.1fs  %s\n", time.Since(start).Seconds(), fmt.Sprintf(format, args...))
	}
	dir, err := os.MkdirTemp(cfg.TempDir, "storegate-bench-")
	if err != nil {
		return err
	}
	if cfg.Keep {
		logf("stores in %s (kept)", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	if cfg.ProfileDir != "" {
		if err := os.MkdirAll(cfg.ProfileDir, 0o755); err != nil {
			return err
		}
	}
	res := &Results{Machine: describeMachine(dir), Config: *cfg}

	bin := cfg.Storegated
	switch bin {
	case "none":
		bin = ""
	case "":
		logf("building storegated")
		if bin, err = buildStoregated(ctx, dir); err != nil {
			return err
		}
	}

	w, err := startWorld(ctx, dir, cfg.Accounts())
	if err != nil {
		return err
	}
	defer w.close()

	logf("limits")
	if res.Limits, err = measureLimits(ctx, cfg, w, mkdir(dir, "limits"), logf); err != nil {
		return fmt.Errorf("limits: %w", err)
	}
	res.Commit = compareCommits(res.Limits)

	res.OfflineCaps = w.offline.offline
	targets := w.targets()
	for _, scenario := range []string{scenarioOnline, scenarioOffline} {
		for _, lanes := range cfg.Lanes {
			run, err := runAuthorize(ctx, cfg, w.hq.keys.Token, targets[scenario], lanes, tokenBudget(cfg, res.Limits, lanes))
			if err != nil {
				return fmt.Errorf("authorize %s %d lanes: %w", scenario, lanes, err)
			}
			rateRun(run, res.Limits)
			res.Authorize = append(res.Authorize, run)
			logf("authorize %s, %d lanes: %.0f/s, p50 %.2f ms, p99 %.2f ms, p99.9 %.2f ms (approved %d, declined %d, errors %d)",
				scenario, lanes, run.PerS, run.Latency.P50, run.Latency.P99, run.Latency.P999, run.Approved, run.Declined, run.Errors)
		}
	}

	logf("outbox drain: %d settlements", cfg.Settlements)
	if res.Drain, err = measureDrain(ctx, mkdir(dir, "drain"), w.hq, cfg.Settlements); err != nil {
		return fmt.Errorf("outbox drain: %w", err)
	}
	logf("outbox drain: %.0f settlements/s", res.Drain.PerS)

	logf("publication fan-out: %d gateways", cfg.Gateways)
	if res.Freeze, err = measureFreeze(ctx, w.hq, cfg.Gateways, cfg.Publications); err != nil {
		return fmt.Errorf("publication fan-out: %w", err)
	}
	logf("publication fan-out: p50 %.2f ms, p99 %.2f ms", res.Freeze.Latency.P50, res.Freeze.Latency.P99)

	if bin != "" {
		lanes := slices.Max(cfg.Lanes)
		logf("storegated process: online, %d lanes", lanes)
		if res.Process, err = measureProcess(ctx, cfg, bin, dir, w.hq, lanes, tokenBudget(cfg, res.Limits, lanes)); err != nil {
			return fmt.Errorf("storegated process: %w", err)
		}
		rateRun(res.Process.Run, res.Limits)
		logf("storegated process: %.0f/s, p99 %.2f ms, peak RSS %.1f MiB", res.Process.Run.PerS, res.Process.Run.Latency.P99, res.Process.Memory.PeakRSS)
	}

	startDir := mkdir(dir, "startup")
	storePath := filepath.Join(startDir, "storegate.db")
	logf("store size: %d decisions", cfg.SizeDecisions)
	if res.StoreSize, err = measureStoreSize(ctx, storePath, cfg.SizeDecisions); err != nil {
		return fmt.Errorf("store size: %w", err)
	}
	logf("store size: %.1f MiB per 100,000 decisions", res.StoreSize.MiBPer100k)
	logf("start-up store: filling to %d decisions", cfg.StartupDecisions)
	t := time.Now()
	err = profile(cfg, "build-store", func() error {
		return buildStore(ctx, storePath, cfg.SizeDecisions, cfg.StartupDecisions)
	})
	if err != nil {
		return fmt.Errorf("start-up store: %w", err)
	}
	build := time.Since(t)
	if res.Startup, err = measureStartup(ctx, bin, startDir, w.hq, cfg.StartupDecisions); err != nil {
		return fmt.Errorf("start-up: %w", err)
	}
	res.Startup.BuildSeconds = build.Seconds()
	logf("start-up: in process %.1f ms, process warm %.1f ms, cold %.1f ms", res.Startup.InProcess, res.Startup.ProcessWarm, res.Startup.ProcessCold)

	res.Targets = checkTargets(cfg, res)
	res.Seconds = time.Since(start).Seconds()
	res.Machine.LoadEnd = loadAverage()
	printReport(m.Stdout, res)
	if cfg.Out != "" {
		if err := writeJSON(cfg.Out, res); err != nil {
			return err
		}
		fmt.Fprintf(m.Stdout, "\nJSON: %s\n", cfg.Out)
	}
	return nil
}

// profile runs fn under a CPU profile written to ProfileDir/name.pprof
// when ProfileDir is set.
func profile(cfg *Config, name string, fn func() error) error {
	if cfg.ProfileDir == "" {
		return fn()
	}
	f, err := os.Create(filepath.Join(cfg.ProfileDir, name+".pprof"))
	if err != nil {
		return err
	}
	defer f.Close()
	if err := pprof.StartCPUProfile(f); err != nil {
		return err
	}
	defer pprof.StopCPUProfile()
	return fn()
}

// tokenBudget is how many tokens a run at lanes may use: 1.5 times what the
// tightest limit allows in the run's duration, within MaxTokens. Minting
// costs a signature per token, so the budget is kept near what a run can
// use; a run that uses them all ends early and says so.
func tokenBudget(cfg *Config, lim *Limits, lanes int) int {
	n := int(lim.at(lanes).TightestPerS*cfg.Duration.Seconds()*1.5) + 100
	return min(n, cfg.MaxTokens)
}

// at returns the limits at lanes.
func (l *Limits) at(lanes int) LaneLimits {
	for _, ll := range l.ByLanes {
		if ll.Lanes == lanes {
			return ll
		}
	}
	return LaneLimits{Lanes: lanes}
}

// rateRun fills a run's ratios from the limits.
func rateRun(run *AuthorizeRun, lim *Limits) {
	ll := lim.at(run.Lanes)
	run.Tightest, run.TightestPerS = ll.Tightest, ll.TightestPerS
	run.Ratio = ratio(run.PerS, ll.TightestPerS)
	run.NoopRatio = ratio(run.PerS, ll.GRPCNoop.PerS)
	run.FloorRatio = ratio(run.Latency.P99, floorMS(lim))
}

// floorMS is one fsync plus one gRPC round trip: the least a durable
// answer over gRPC can take.
func floorMS(lim *Limits) float64 {
	return lim.Fsync.P50 + lim.RoundTrip.Latency.P50
}

// writeJSON writes res to path, making its directory.
func writeJSON(path string, res *Results) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	b, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// GOMAXPROCS is recorded with the machine.
var gomaxprocs = runtime.GOMAXPROCS(0)
