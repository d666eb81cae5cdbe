package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"storegate/gateway"
	"storegate/gateway/centralclient"
	"storegate/storecache"
)

// StoreSize is the store file after a number of approvals, each with its
// idempotency record, spent token, queued settlement and audit record.
type StoreSize struct {
	Decisions        int     `json:"decisions"`
	Bytes            int64   `json:"bytes"`
	MiBPer100k       float64 `json:"mib_per_100k_decisions"`
	BytesPerDecision float64 `json:"bytes_per_decision"`
	// FillPerS is how fast they were committed, by as many lanes as a
	// transaction holds (storecache.DefaultMaxBatch).
	FillPerS float64 `json:"fill_per_s"`
}

// measureStoreSize commits n approvals into a new store from 512 lanes (as
// many as share a transaction) and reports the file's size once closed. The
// commits skip their fsyncs, which changes nothing in the file, only how
// long a busy disk makes it take.
func measureStoreSize(ctx context.Context, path string, n int) (*StoreSize, error) {
	st := storecache.NewStore(path)
	st.NoSync = true
	if err := st.Open(ctx); err != nil {
		return nil, err
	}
	start := time.Now()
	if err := fillStore(ctx, st, storecache.DefaultMaxBatch, 0, n, gateway.ModeOnline); err != nil {
		st.Close(context.Background())
		return nil, err
	}
	elapsed := time.Since(start)
	if err := st.Close(context.Background()); err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	return &StoreSize{
		Decisions:        n,
		Bytes:            fi.Size(),
		MiBPer100k:       float64(fi.Size()) / (1 << 20) * 100_000 / float64(n),
		BytesPerDecision: float64(fi.Size()) / float64(n),
		FillPerS:         rate(n, elapsed),
	}, nil
}

// Startup is how long a gateway takes to start on a store holding many
// decisions.
type Startup struct {
	Decisions    int     `json:"decisions"`
	StoreBytes   int64   `json:"store_bytes"`
	BuildSeconds float64 `json:"build_seconds"`
	// InProcess is opening the store and the gateway and applying the keyset
	// file, as storegated's Run does them, in this process (median of
	// the tries), in ms.
	InProcess float64 `json:"in_process_ms"`
	// Process is from exec of the storegated binary until it answers a
	// health check SERVING, with the store file in the page cache (Warm)
	// and after dropping its pages from the page cache (Cold), median of
	// the tries, in ms. Empty is the same on an empty store, for scale.
	ProcessWarm  float64 `json:"process_warm_ms"`
	ProcessCold  float64 `json:"process_cold_ms"`
	ProcessEmpty float64 `json:"process_empty_store_ms"`
	Tries        int     `json:"tries"`
	// Memory is the process's memory once it serves on the big store.
	Memory Memory `json:"memory_after_start"`
}

// startupTries is how often each start-up is timed.
const startupTries = 3

// buildBatch is how many decisions share a transaction when buildStore
// fills the start-up store.
const buildBatch = 1024

// buildStore extends the store at path to n decisions in all (it may hold
// some already), in large transactions without a sync per commit: Close
// syncs the file once.
func buildStore(ctx context.Context, path string, have, n int) error {
	st := storecache.NewStore(path)
	st.NoSync = true
	st.MaxBatch = buildBatch
	if err := st.Open(ctx); err != nil {
		return err
	}
	if err := fillStore(ctx, st, buildBatch, have, n-have, gateway.ModeOnline); err != nil {
		st.Close(context.Background())
		return err
	}
	return st.Close(context.Background())
}

// measureStartup times start-ups on the store at dir/storegate.db, holding
// n decisions: in this process, and as the storegated process when bin is
// set.
func measureStartup(ctx context.Context, bin, dir string, h *hq, n int) (*Startup, error) {
	path := filepath.Join(dir, "storegate.db")
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	out := &Startup{Decisions: n, StoreBytes: fi.Size(), Tries: startupTries}
	keyset, err := os.ReadFile(filepath.Join(h.keysDir, "keyset.cose"))
	if err != nil {
		return nil, err
	}
	var times []time.Duration
	for range startupTries {
		d, err := startInProcess(ctx, path, h, keyset)
		if err != nil {
			return nil, err
		}
		times = append(times, d)
	}
	out.InProcess = median(times)
	if bin == "" {
		return out, nil
	}
	run := func(dataDir string, cold bool) (float64, error) {
		var times []time.Duration
		for range startupTries {
			if cold {
				if err := dropCache(filepath.Join(dataDir, "storegate.db")); err != nil {
					return 0, err
				}
			}
			p, d, err := startStoregated(ctx, bin, dataDir, h)
			if err != nil {
				return 0, err
			}
			if out.Memory.PeakRSS == 0 && dataDir == dir {
				if out.Memory, err = memoryOf(p.cmd.Process.Pid); err != nil {
					p.stop()
					return 0, err
				}
			}
			if err := p.stop(); err != nil {
				return 0, err
			}
			times = append(times, d)
		}
		return median(times), nil
	}
	if out.ProcessWarm, err = run(dir, false); err != nil {
		return nil, err
	}
	if out.ProcessCold, err = run(dir, true); err != nil {
		return nil, err
	}
	if out.ProcessEmpty, err = run(mkdir(dir, "empty"), false); err != nil {
		return nil, err
	}
	return out, nil
}

// startInProcess opens the store and a gateway over it as storegated's Run
// does, and closes them again.
func startInProcess(ctx context.Context, path string, h *hq, keyset []byte) (time.Duration, error) {
	start := time.Now()
	st := storecache.NewStore(path)
	if err := st.Open(ctx); err != nil {
		return 0, err
	}
	defer st.Close(context.Background())
	conn, err := dialLoopback(h.addr)
	if err != nil {
		return 0, err
	}
	defer conn.Close()
	gw := gateway.NewGateway(benchStoreID, st, centralclient.New(conn), h.keys.RootPublic)
	if err := gw.Open(ctx); err != nil {
		return 0, err
	}
	if _, _, err := gw.ApplyKeyset(ctx, keyset); err != nil && gateway.ErrorCode(err) != gateway.ESTALE {
		return 0, err
	}
	return time.Since(start), nil
}

// dropCache asks the kernel to drop the file's clean pages from the page
// cache, so that the next open reads it from the disk (as after a reboot).
func dropCache(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED); err != nil {
		return fmt.Errorf("fadvise %s: %w", path, err)
	}
	return nil
}

// median returns the median of d in milliseconds.
func median(d []time.Duration) float64 {
	s := slices.Clone(d)
	slices.Sort(s)
	return ms(s[len(s)/2])
}
