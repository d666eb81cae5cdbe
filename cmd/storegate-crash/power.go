package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"time"

	"storegate/internal/lazyfs"
)

// The power test: storegated's and storegate-hq's data folders are lazy file
// systems (internal/lazyfs), which keep only what was synced; a power cut
// drops the rest. The store and HQ are two machines, so a cut takes both
// down, or one of them.

// power is the two machines' disks.
type power struct {
	// store and hq serve the backing folders store/ and hq/ of the run's
	// folder (where check reads the files once they are unmounted) on
	// storeDir and hqDir, the daemons' data folders.
	store, hq       *lazyfs.FS
	storeDir, hqDir string
	closed          bool

	// What the cuts were.
	cuts, both, storeAlone, hqAlone, torn, whileStarting int
}

// mountPower mounts the lazy file systems over dir/store and dir/hq.
func mountPower(dir string) (*power, error) {
	p := &power{storeDir: filepath.Join(dir, "power", "store"), hqDir: filepath.Join(dir, "power", "hq")}
	mount := func(name, mnt string) (*lazyfs.FS, error) {
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			return nil, err
		}
		f, err := lazyfs.New(filepath.Join(dir, name), filepath.Join(dir, "power", name+".image"))
		if err != nil {
			return nil, err
		}
		if err := f.Mount(mnt); err != nil {
			return nil, fmt.Errorf("%w (the power test needs FUSE: /dev/fuse and root, or fusermount3 from Debian's fuse3)", err)
		}
		return f, nil
	}
	var err error
	if p.store, err = mount("store", p.storeDir); err != nil {
		return nil, err
	}
	if p.hq, err = mount("hq", p.hqDir); err != nil {
		_ = p.store.Close()
		return nil, err
	}
	return p, nil
}

// close unmounts both file systems, keeping what is on them; the daemons
// must have stopped (or been killed). It may be called more than once, and
// on a nil power.
func (p *power) close() error {
	if p == nil || p.closed {
		return nil
	}
	p.closed = true
	return errors.Join(p.store.Close(), p.hq.Close())
}

// powerCut cuts the power of both machines, or of one, and brings it back:
// the daemons on them die at once with what they had not synced, and start
// again on what their disks kept. Half the cuts are torn. HQ, if it is down
// for an outage, stays down (a stopped HQ that loses its power is killed);
// powerCut returns the outage as it then is.
func (h *harness) powerCut(ctx context.Context, k int, outage string) (string, error) {
	p := h.power
	cutStore, cutHQ := true, true
	switch h.rng.IntN(4) {
	case 2:
		cutHQ = false
		p.storeAlone++
	case 3:
		cutStore = false
		p.hqAlone++
	default:
		p.both++
	}
	var tear *rand.Rand
	if h.rng.IntN(2) == 0 {
		// Seeded by the run's seed and the cut's number: the same seed
		// keeps the same pages of the same unsynced set.
		tear = rand.New(rand.NewPCG(h.cfg.Seed, uint64(k)))
		p.torn++
	}
	hqRuns := cutHQ && outage != "killed"
	if err := h.cut(cutStore, cutHQ, hqRuns, tear); err != nil {
		return outage, err
	}
	if cutHQ {
		switch outage {
		case "":
			if err := h.hq.start(ctx); err != nil {
				return outage, err
			}
		case "stopped":
			outage = "killed" // the cut killed it: centralUp starts it
		}
	}
	if !cutStore {
		return outage, nil
	}
	if h.rng.IntN(20) == 0 {
		// Now and then, cut the store's power again while storegated
		// starts: creating or opening the store, applying the keyset.
		if err := h.gw.launch(); err != nil {
			return outage, err
		}
		time.Sleep(time.Duration(h.rng.IntN(30)) * time.Millisecond)
		if err := h.cut(true, false, false, nil); err != nil {
			return outage, err
		}
		p.whileStarting++
	}
	if err := h.gw.start(ctx); err != nil {
		return outage, fmt.Errorf("after power cut %d: %w", k, err)
	}
	h.stats.restarts.Add(1)
	return outage, nil
}

// cut is one power cut: the disks stop taking anything, the processes on
// them die, and the disks come back with what they kept. storegated must be
// running (or starting) when the store is cut; HQ is killed when hqRuns.
func (h *harness) cut(cutStore, cutHQ, hqRuns bool, tear *rand.Rand) error {
	p := h.power
	var disks []*lazyfs.FS
	var procs []*proc
	if cutStore {
		disks, procs = append(disks, p.store), append(procs, h.gw)
	}
	if cutHQ {
		disks = append(disks, p.hq)
		if hqRuns {
			procs = append(procs, h.hq)
		}
	}
	p.cuts++
	// First the disks, so that nothing the processes do from now on
	// reaches them; then the processes. A process blocked on a cut disk
	// dies once the disk is back (Restart answers it).
	for _, d := range disks {
		if err := d.Cut(tear); err != nil {
			return err
		}
	}
	for _, pr := range procs {
		if err := pr.sigkill(); err != nil {
			h.problem("%v", err)
		}
	}
	for _, d := range disks {
		if err := d.Restart(); err != nil {
			return err
		}
	}
	for _, pr := range procs {
		<-pr.done
	}
	return nil
}

// PowerReport is what the power cuts were and what the disks lost.
type PowerReport struct {
	// Cuts counts the power cuts: Both of the two machines, StoreAlone and
	// HQAlone of one; Torn of them kept a random half of the unsynced
	// pages; WhileStarting cut the store again while storegated started.
	Cuts, Both, StoreAlone, HQAlone, Torn, WhileStarting int
	// Store and HQ are their disks' counts.
	Store, HQ lazyfs.Stats
}

func (p *power) report() *PowerReport {
	return &PowerReport{Cuts: p.cuts, Both: p.both, StoreAlone: p.storeAlone, HQAlone: p.hqAlone, Torn: p.torn,
		WhileStarting: p.whileStarting, Store: p.store.Stats(), HQ: p.hq.Stats()}
}

// print writes the power cuts' lines of the report.
func (r *PowerReport) print(w interface{ Write([]byte) (int, error) }) {
	fmt.Fprintf(w, "  power cuts  %d: %d of both machines, %d of the store alone, %d of HQ alone; %d torn; %d while storegated started\n",
		r.Cuts, r.Both, r.StoreAlone, r.HQAlone, r.Torn, r.WhileStarting)
	for _, d := range []struct {
		name string
		s    lazyfs.Stats
	}{{"store disk", r.Store}, {"HQ disk   ", r.HQ}} {
		fmt.Fprintf(w, "  %s  %d unsynced pages lost, %d kept by torn cuts, %d folder entries undone; %d file syncs, %d folder syncs\n",
			d.name, d.s.PagesLost, d.s.PagesKept, d.s.EntriesUndone, d.s.FileSyncs, d.s.DirSyncs)
	}
}
