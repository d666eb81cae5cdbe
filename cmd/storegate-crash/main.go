// Command storegate-crash is storegate's crash test. It starts storegate-hq
// and storegated as processes, drives concurrent sales from several POS
// lanes, kills storegated with SIGKILL at random moments and restarts it,
// takes HQ down (killed, or stopped so that it answers nothing) and up
// along the way; then it drains the outbox, stops both, and checks their
// files against each other and against what every POS heard: every approval
// a POS was told is in HQ's books exactly once, nothing is in the books that
// the gateway did not approve, the offline exposure never exceeded its cap,
// and both bbolt files pass their consistency checks. `make crashtest` runs
// it; a short run is part of `make test`.
//
// With --power-cuts it is the power test (`make powertest`): the daemons keep
// their data on lazy file systems (internal/lazyfs) that keep only what was
// synced, and instead of killing storegated the run cuts the power of the
// store, of HQ or of both, which kills the daemons and drops every write
// they had not synced (some cuts keep a random part of it), then brings the
// disks back and restarts the daemons; the checks are the same.
//
// It exits 0 when the run found nothing wrong, 1 otherwise.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	cfg := DefaultConfig()
	fs := flag.NewFlagSet("storegate-crash", flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "storegate-crash: kill storegated under load, take HQ down and up, and check that nothing is lost or booked twice.\n\nUsage: storegate-crash --bin DIR [flags]\n\n")
		fs.PrintDefaults()
	}
	fs.StringVar(&cfg.Bin, "bin", "bin", "folder holding storegated and storegate-hq")
	fs.StringVar(&cfg.Dir, "dir", "", "folder for keys, state and logs (default: a new temporary one, removed after a clean run)")
	fs.BoolVar(&cfg.Keep, "keep", false, "keep the temporary folder after a clean run")
	fs.IntVar(&cfg.Kills, "kills", cfg.Kills, "how many times to kill storegated")
	fs.IntVar(&cfg.PowerCuts, "power-cuts", 0, "cut the power this many times instead of killing storegated: both daemons' data on lazy file systems that drop what was not synced (needs FUSE)")
	fs.IntVar(&cfg.Lanes, "lanes", cfg.Lanes, "POS lanes selling at once")
	fs.IntVar(&cfg.Accounts, "accounts", cfg.Accounts, "customer accounts")
	fs.IntVar(&cfg.OutageEvery, "outage-every", cfg.OutageEvery, "take HQ down once per this many kills (0: never)")
	fs.DurationVar(&cfg.MinUp, "min-up", cfg.MinUp, "shortest run of storegated between kills")
	fs.DurationVar(&cfg.MaxUp, "max-up", cfg.MaxUp, "longest run of storegated between kills")
	fs.Uint64Var(&cfg.Seed, "seed", 0, "seed of every random choice (0: a new one, printed)")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if err == flag.ErrHelp {
			os.Exit(0)
		}
		os.Exit(2)
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "storegate-crash: unexpected arguments %q\n", fs.Args())
		os.Exit(2)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	rep, err := Run(ctx, cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, "storegate-crash:", err)
		os.Exit(1)
	}
	if !rep.OK() {
		os.Exit(1)
	}
}
