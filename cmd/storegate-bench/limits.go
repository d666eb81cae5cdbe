package main

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"
	bolt "go.etcd.io/bbolt"
	"golang.org/x/sys/unix"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	"storegate/gateway"
	"storegate/internal/groupcommit"
	"storegate/storecache"
)

// Limits are the machine's own limits for the work one Authorize does,
// measured in the same run.
type Limits struct {
	// Ed25519 is crypto/ed25519.Verify on a real token's signature and
	// Sig_structure, per second, by number of goroutines.
	Ed25519 []GoroutineRate `json:"ed25519_verify"`
	// TokenVerify is the gateway's whole token check (base45, COSE, CBOR
	// claims, Ed25519) per second on every core.
	TokenVerify GoroutineRate `json:"token_verify"`
	// Fsync is one 4 KiB write plus fdatasync of a preallocated file.
	Fsync      Latency `json:"fsync"`
	FsyncPerS  float64 `json:"fsync_per_s"`
	FsyncBytes int     `json:"fsync_write_bytes"`
	// BoltSerial is one decision per durable bbolt transaction, one writer:
	// the store's records written raw, without storecache's committer.
	BoltSerial Rate `json:"bolt_serial"`
	// RoundTrip is one no-op gRPC call from one lane: a round trip over
	// loopback.
	RoundTrip Rate `json:"grpc_round_trip"`
	// ByLanes holds the limits that depend on concurrency.
	ByLanes []LaneLimits `json:"by_lanes"`
}

// GoroutineRate is a rate at a number of goroutines.
type GoroutineRate struct {
	Goroutines int     `json:"goroutines"`
	PerS       float64 `json:"per_s"`
}

// Rate is a rate with the latency of each operation.
type Rate struct {
	PerS    float64 `json:"per_s"`
	Latency Latency `json:"latency"`
	// PerTx is the mean number of decisions one transaction held, where it
	// applies.
	PerTx float64 `json:"decisions_per_tx,omitempty"`
	// CPUPerOp is this process's CPU time per operation, in µs, where
	// measured.
	CPUPerOp float64 `json:"cpu_us_per_op,omitempty"`
}

// LaneLimits are the limits at one number of concurrent lanes.
type LaneLimits struct {
	Lanes int `json:"lanes"`
	// Ed25519 is the verify rate at min(lanes, GOMAXPROCS) goroutines.
	Ed25519 float64 `json:"ed25519_verify_per_s"`
	// BoltBatched is decisions per second when one writer commits lanes
	// decisions per durable transaction: what bbolt and the disk allow
	// when every lane's decision shares one commit. At one lane it is
	// BoltSerial.
	BoltBatched float64 `json:"bolt_batched_per_s"`
	// Committer is storecache.CommitDecision from lanes goroutines:
	// storecache's committer, which commits as soon as the previous commit
	// ends.
	Committer Rate `json:"storecache_committer"`
	// Group is the raw records committed from lanes goroutines through
	// internal/groupcommit, the committer storecache and central share
	// (commit as soon as the previous commit ends), and BoltBatch the same
	// through bbolt's DB.Batch, with its default MaxBatchDelay.
	Group     Rate `json:"raw_group_commit"`
	BoltBatch Rate `json:"raw_db_batch"`
	// GRPCNoop is grpc.health.v1 Check on the gateway's server over the
	// POS's connection: a unary call that does nothing.
	GRPCNoop Rate `json:"grpc_noop"`
	// Tightest names the smallest of Ed25519, BoltBatched and GRPCNoop.
	Tightest     string  `json:"tightest"`
	TightestPerS float64 `json:"tightest_per_s"`
}

// tokenSignature returns the signed bytes (the COSE Sig_structure) and the
// signature of a token, checked to verify under pub, so that the Ed25519
// limit verifies exactly what the gateway verifies.
func tokenSignature(token string, pub ed25519.PublicKey) (msg, sig []byte, err error) {
	raw, err := gateway.Base45Decode(strings.TrimPrefix(token, gateway.TokenPrefix))
	if err != nil {
		return nil, nil, err
	}
	var m cose.Sign1Message
	if err := m.UnmarshalCBOR(raw); err != nil {
		return nil, nil, err
	}
	msg, err = cbor.Marshal([]any{"Signature1", cbor.RawMessage(m.Headers.RawProtected), []byte{}, m.Payload})
	if err != nil {
		return nil, nil, err
	}
	if !ed25519.Verify(pub, msg, m.Signature) {
		return nil, nil, errors.New("token signature: the Sig_structure rebuilt does not verify")
	}
	return msg, m.Signature, nil
}

// spin calls fn from g goroutines for d and returns calls per second.
func spin(g int, d time.Duration, fn func() error) (float64, error) {
	r := runLoad(context.Background(), g, d, 0, func(int, int) error { return fn() })
	if r.FirstErr != nil {
		return 0, r.FirstErr
	}
	return r.Rate(), nil
}

// measureLimits measures every limit. lanes are the concurrencies of the
// Authorize runs; w supplies the token key, the keyring and the gateway's
// server for the no-op call.
func measureLimits(ctx context.Context, cfg *Config, w *world, dir string, logf func(string, ...any)) (*Limits, error) {
	lim := &Limits{FsyncBytes: 4096}
	d := cfg.LimitDuration
	procs := runtime.GOMAXPROCS(0)

	tokens, err := mintTokens(w.hq.keys.Token, 1, 1)
	if err != nil {
		return nil, err
	}
	msg, sig, err := tokenSignature(tokens[0], w.hq.keys.TokenPublic)
	if err != nil {
		return nil, err
	}
	pub := w.hq.keys.TokenPublic
	edRate := map[int]float64{}
	for _, g := range distinct(1, procs) {
		r, err := spin(g, d, func() error {
			if !ed25519.Verify(pub, msg, sig) {
				return errors.New("ed25519: verify failed")
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		edRate[g] = r
		lim.Ed25519 = append(lim.Ed25519, GoroutineRate{Goroutines: g, PerS: r})
		logf("limit: ed25519 verify, %d goroutines: %.0f/s", g, r)
	}
	var verifier gateway.TokenVerifier
	keys := w.hq.keys.Keyring
	r, err := spin(procs, d, func() error {
		_, err := verifier.Verify(tokens[0], keys, time.Now())
		return err
	})
	if err != nil {
		return nil, err
	}
	lim.TokenVerify = GoroutineRate{Goroutines: procs, PerS: r}
	logf("limit: token verify, %d goroutines: %.0f/s", procs, r)

	if lim.Fsync, lim.FsyncPerS, err = measureFsync(filepath.Join(dir, "fsync.dat"), lim.FsyncBytes, d); err != nil {
		return nil, err
	}
	logf("limit: fsync p50 %.3f ms, %.0f/s", lim.Fsync.P50, lim.FsyncPerS)

	if lim.BoltSerial, err = measureBoltBatched(filepath.Join(dir, "bolt-serial.db"), 1, d); err != nil {
		return nil, err
	}
	logf("limit: bbolt serial commit %.0f/s, p50 %.3f ms", lim.BoltSerial.PerS, lim.BoltSerial.Latency.P50)

	if lim.RoundTrip, err = measureNoop(ctx, w.onlinePOS.health, 1, d); err != nil {
		return nil, err
	}
	logf("limit: gRPC round trip p50 %.3f ms", lim.RoundTrip.Latency.P50)

	for _, lanes := range cfg.Lanes {
		ll := LaneLimits{Lanes: lanes, Ed25519: edRate[min(lanes, procs)]}
		if lanes == 1 {
			ll.BoltBatched = lim.BoltSerial.PerS
		} else {
			b, err := measureBoltBatched(filepath.Join(dir, fmt.Sprintf("bolt-batched-%d.db", lanes)), lanes, d)
			if err != nil {
				return nil, err
			}
			ll.BoltBatched = b.PerS
		}
		if ll.Committer, err = measureCommitter(ctx, filepath.Join(dir, fmt.Sprintf("committer-%d.db", lanes)), lanes, d); err != nil {
			return nil, err
		}
		if ll.Group, err = measureGroup(filepath.Join(dir, fmt.Sprintf("group-%d.db", lanes)), lanes, d); err != nil {
			return nil, err
		}
		if ll.BoltBatch, err = measureDBBatch(filepath.Join(dir, fmt.Sprintf("dbbatch-%d.db", lanes)), lanes, d); err != nil {
			return nil, err
		}
		if lanes == 1 {
			ll.GRPCNoop = lim.RoundTrip
		} else if ll.GRPCNoop, err = measureNoop(ctx, w.onlinePOS.health, lanes, d); err != nil {
			return nil, err
		}
		ll.Tightest, ll.TightestPerS = "ed25519 verify", ll.Ed25519
		if ll.BoltBatched < ll.TightestPerS {
			ll.Tightest, ll.TightestPerS = "bbolt durable commit", ll.BoltBatched
		}
		if ll.GRPCNoop.PerS < ll.TightestPerS {
			ll.Tightest, ll.TightestPerS = "gRPC no-op call", ll.GRPCNoop.PerS
		}
		lim.ByLanes = append(lim.ByLanes, ll)
		logf("limit: %d lanes: bbolt %d/tx %.0f/s; group commit %.0f/s (%.1f/tx), DB.Batch %.0f/s (%.1f/tx); storecache %.0f/s (%.1f/tx); gRPC no-op %.0f/s",
			lanes, lanes, ll.BoltBatched, ll.Group.PerS, ll.Group.PerTx, ll.BoltBatch.PerS, ll.BoltBatch.PerTx,
			ll.Committer.PerS, ll.Committer.PerTx, ll.GRPCNoop.PerS)
	}
	return lim, nil
}

// distinct returns its arguments without repeats, in order.
func distinct(v ...int) []int {
	var out []int
	for _, x := range v {
		if len(out) == 0 || out[len(out)-1] != x {
			out = append(out, x)
		}
	}
	return out
}

// measureFsync times writing size bytes at the start of a preallocated file
// and fdatasync, as bbolt syncs (fdatasync on Linux).
func measureFsync(path string, size int, d time.Duration) (Latency, float64, error) {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o600)
	if err != nil {
		return Latency{}, 0, err
	}
	defer f.Close()
	buf := make([]byte, size)
	if _, err := f.WriteAt(buf, 0); err != nil {
		return Latency{}, 0, err
	}
	if err := f.Sync(); err != nil {
		return Latency{}, 0, err
	}
	fd := int(f.Fd())
	r := runLoad(context.Background(), 1, d, 0, func(_, n int) error {
		buf[0] = byte(n)
		if _, err := f.WriteAt(buf, 0); err != nil {
			return err
		}
		return unix.Fdatasync(fd)
	})
	if r.FirstErr != nil {
		return Latency{}, 0, r.FirstErr
	}
	return summarize(r.Latencies), r.Rate(), nil
}

// measureBoltBatched commits perTx decisions per durable transaction from
// one writer, raw, and returns decisions per second of time spent in the
// transactions and the latency of one transaction. The records are made and
// encoded before each transaction starts, outside the time.
func measureBoltBatched(path string, perTx int, d time.Duration) (Rate, error) {
	db, err := openRawDB(path)
	if err != nil {
		return Rate{}, err
	}
	defer db.Close()
	now := time.Now()
	var (
		lat  []time.Duration
		busy time.Duration
		n    int
		recs = make([]*rawRecord, perTx)
	)
	for end := time.Now().Add(d); time.Now().Before(end); {
		for i := range recs {
			var err error
			if recs[i], err = newRawRecord(benchDecision("lane-01", n, gateway.ModeOnline, now)); err != nil {
				return Rate{}, err
			}
			n++
		}
		t := time.Now()
		err := db.Update(func(tx *bolt.Tx) error {
			for _, rec := range recs {
				if err := rawApply(tx, rec); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return Rate{}, err
		}
		dt := time.Since(t)
		busy += dt
		lat = append(lat, dt)
	}
	return Rate{PerS: rate(n, busy), Latency: summarize(lat), PerTx: float64(perTx)}, nil
}

// measureDBBatch commits one decision per call through bbolt's DB.Batch, from
// lanes goroutines, with bbolt's default MaxBatchDelay and MaxBatchSize.
func measureDBBatch(path string, lanes int, d time.Duration) (Rate, error) {
	db, err := openRawDB(path)
	if err != nil {
		return Rate{}, err
	}
	defer db.Close()
	now := time.Now()
	var (
		mu  sync.Mutex
		txs = map[int]struct{}{}
	)
	r := runLoad(context.Background(), lanes, d, 0, func(lane, n int) error {
		rec, err := newRawRecord(benchDecision(fmt.Sprintf("lane-%02d", lane), n, gateway.ModeOnline, now))
		if err != nil {
			return err
		}
		return db.Batch(func(tx *bolt.Tx) error {
			mu.Lock()
			txs[tx.ID()] = struct{}{}
			mu.Unlock()
			return rawApply(tx, rec)
		})
	})
	if r.FirstErr != nil {
		return Rate{}, r.FirstErr
	}
	return Rate{PerS: r.Rate(), Latency: summarize(r.Latencies), PerTx: ratio(float64(r.Ops), float64(len(txs)))}, nil
}

// measureGroup commits one decision per call through the group committer
// storecache and central share (internal/groupcommit, with its default
// MaxBatch), from lanes goroutines: its strategy on the raw records, without
// storecache's checks.
func measureGroup(path string, lanes int, d time.Duration) (Rate, error) {
	db, err := openRawDB(path)
	if err != nil {
		return Rate{}, err
	}
	defer db.Close()
	g := groupcommit.NewCommitter(db)
	if err := g.Open(); err != nil {
		return Rate{}, err
	}
	ctx := context.Background()
	now := time.Now()
	r := runLoad(ctx, lanes, d, 0, func(lane, n int) error {
		rec, err := newRawRecord(benchDecision(fmt.Sprintf("lane-%02d", lane), n, gateway.ModeOnline, now))
		if err != nil {
			return err
		}
		return g.Commit(ctx, func(tx *bolt.Tx) error { return rawApply(tx, rec) })
	})
	if err := g.Close(ctx); err != nil {
		return Rate{}, err
	}
	if r.FirstErr != nil {
		return Rate{}, r.FirstErr
	}
	st := g.Stats()
	return Rate{PerS: r.Rate(), Latency: summarize(r.Latencies), PerTx: ratio(float64(st.Committed), float64(st.Transactions))}, nil
}

// measureCommitter commits decisions through storecache.CommitDecision from
// lanes goroutines.
func measureCommitter(ctx context.Context, path string, lanes int, d time.Duration) (Rate, error) {
	st := storecache.NewStore(path)
	if err := st.Open(ctx); err != nil {
		return Rate{}, err
	}
	defer st.Close(context.Background())
	now := time.Now()
	r := runLoad(ctx, lanes, d, 0, func(lane, n int) error {
		return st.CommitDecision(ctx, benchDecision(fmt.Sprintf("lane-%02d", lane), n, gateway.ModeOnline, now))
	})
	if r.FirstErr != nil {
		return Rate{}, r.FirstErr
	}
	s := st.Stats()
	return Rate{PerS: r.Rate(), Latency: summarize(r.Latencies), PerTx: ratio(float64(s.Decisions), float64(s.Transactions))}, nil
}

// measureNoop calls grpc.health.v1 Check from lanes goroutines.
func measureNoop(ctx context.Context, hc healthpb.HealthClient, lanes int, d time.Duration) (Rate, error) {
	req := &healthpb.HealthCheckRequest{}
	// Warm the connection.
	if _, err := hc.Check(ctx, req); err != nil {
		return Rate{}, err
	}
	cpu := cpuTime()
	r := runLoad(ctx, lanes, d, 0, func(int, int) error {
		_, err := hc.Check(ctx, req)
		return err
	})
	cpu = cpuTime() - cpu
	if r.FirstErr != nil {
		return Rate{}, r.FirstErr
	}
	return Rate{PerS: r.Rate(), Latency: summarize(r.Latencies), CPUPerOp: ratio(float64(cpu.Microseconds()), float64(r.Ops))}, nil
}
