package main

import (
	"context"
	"crypto/ed25519"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/status"

	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// Scenarios of the Authorize runs.
const (
	scenarioOnline  = "online"
	scenarioOffline = "offline"
)

// world is HQ and two gateways over it, each behind its gRPC face with a
// POS connection to it: one that reaches central on loopback, and one whose
// central address is a closed loopback port.
type world struct {
	hq                    *hq
	online, offline       *store
	onlinePOS, offlinePOS *pos
}

// pos is the lanes' side of a gateway: one connection every lane shares.
type pos struct {
	conn   *grpc.ClientConn
	pay    storegatev1.PaymentServiceClient
	health healthpb.HealthClient
}

func newPOS(addr string) (*pos, error) {
	conn, err := dialLoopback(addr)
	if err != nil {
		return nil, err
	}
	return &pos{conn: conn, pay: storegatev1.NewPaymentServiceClient(conn), health: healthpb.NewHealthClient(conn)}, nil
}

// startWorld starts HQ with an account per lane and the two gateways.
func startWorld(ctx context.Context, dir string, accounts int) (*world, error) {
	w := &world{}
	var err error
	if w.hq, err = startHQ(filepath.Join(dir, "hq"), accounts); err != nil {
		return nil, fmt.Errorf("start HQ: %w", err)
	}
	if w.online, err = startStore(ctx, mkdir(dir, "online"), w.hq, storeOptions{CentralAddr: w.hq.addr}); err != nil {
		w.close()
		return nil, fmt.Errorf("start online gateway: %w", err)
	}
	closed, err := closedLoopbackAddr()
	if err != nil {
		w.close()
		return nil, err
	}
	w.offline, err = startStore(ctx, mkdir(dir, "offline"), w.hq, storeOptions{
		CentralAddr: closed, CentralTimeout: offlineCentralTimeout, Offline: true,
	})
	if err != nil {
		w.close()
		return nil, fmt.Errorf("start offline gateway: %w", err)
	}
	if w.onlinePOS, err = newPOS(w.online.addr); err != nil {
		w.close()
		return nil, err
	}
	if w.offlinePOS, err = newPOS(w.offline.addr); err != nil {
		w.close()
		return nil, err
	}
	return w, nil
}

func (w *world) close() {
	for _, p := range []*pos{w.onlinePOS, w.offlinePOS} {
		if p != nil {
			p.conn.Close()
		}
	}
	for _, s := range []*store{w.online, w.offline} {
		if s != nil {
			s.close()
		}
	}
	if w.hq != nil {
		w.hq.Close()
	}
}

// mkdir makes dir/name and returns it; the parent exists, so only a full
// disk fails it, and then the store's open reports it.
func mkdir(dir, name string) string {
	p := filepath.Join(dir, name)
	_ = os.MkdirAll(p, 0o700)
	return p
}

// AuthorizeRun is one closed-loop run of Authorize over gRPC.
type AuthorizeRun struct {
	Scenario string `json:"scenario"`
	// Path says what the scenario's decisions do on this build.
	Path       string  `json:"path"`
	Lanes      int     `json:"lanes"`
	Ops        int     `json:"ops"`
	Errors     int     `json:"errors"`
	FirstError string  `json:"first_error,omitempty"`
	Seconds    float64 `json:"seconds"`
	PerS       float64 `json:"per_s"`
	Latency    Latency `json:"latency"`
	Approved   int     `json:"approved"`
	Declined   int     `json:"declined"`
	// Reasons counts declines by reason.
	Reasons map[string]int `json:"decline_reasons,omitempty"`
	// PerTx is the mean number of decisions per store transaction.
	PerTx float64 `json:"decisions_per_tx"`
	// CPUs is the CPU time the run used (this process's, and the gateway
	// process's when it runs apart) over its length: below GOMAXPROCS
	// while the run waits on the disk, or while other work on the machine
	// takes the CPUs. CPUPerOp is that CPU time per sale, in µs: POS
	// client, gateway and, online, central together.
	CPUs     float64 `json:"cpus_used"`
	CPUPerOp float64 `json:"cpu_us_per_op"`
	// TokensOut is true when the run ended because its minted tokens ran
	// out before its duration.
	TokensOut bool `json:"tokens_ran_out,omitempty"`
	// Tightest is the tightest limit at this concurrency, and Ratio the
	// throughput over it.
	Tightest     string  `json:"tightest_limit"`
	TightestPerS float64 `json:"tightest_limit_per_s"`
	Ratio        float64 `json:"ratio_to_tightest"`
	// NoopRatio is the throughput over the no-op gRPC limit.
	NoopRatio float64 `json:"ratio_to_grpc_noop"`
	// FloorRatio is p99 over one fsync plus one gRPC round trip.
	FloorRatio float64 `json:"p99_over_fsync_plus_rtt"`
}

// outcomes counts a run's decisions.
type outcomes struct {
	mu       sync.Mutex
	approved int
	declined int
	reasons  map[string]int
}

func (o *outcomes) add(res *storegatev1.AuthorizeResponse) {
	d := res.GetDecision()
	o.mu.Lock()
	defer o.mu.Unlock()
	if d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED {
		o.approved++
		return
	}
	o.declined++
	if o.reasons == nil {
		o.reasons = map[string]int{}
	}
	o.reasons[d.GetReason().String()]++
}

// authorizeReq is a sale on lane with txn and token.
func authorizeReq(lane, txn, token string) *storegatev1.AuthorizeRequest {
	return &storegatev1.AuthorizeRequest{
		Lane: lane, PosTransactionId: txn, Lines: basketLines, Total: basketTotal, Currency: "JPY",
		Credential: &storegatev1.AuthorizeRequest_Token{Token: token},
	}
}

// runAuthorize runs one scenario at lanes: it mints the tokens first, warms
// the path up with a sale per lane, then times a closed loop for the
// configured duration (or until the tokens run out). Every sale has a fresh
// token and its own lane and POS transaction id.
func runAuthorize(ctx context.Context, cfg *Config, tokenKey ed25519.PrivateKey, tg target, lanes int, budget int) (*AuthorizeRun, error) {
	p, scenario := tg.pos, tg.scenario
	tokens, err := mintTokens(tokenKey, budget+lanes, cfg.Accounts())
	if err != nil {
		return nil, err
	}
	warm, tokens := tokens[:lanes], tokens[lanes:]
	run := fmt.Sprintf("%s%s-%d", tg.prefix, scenario, lanes)
	call := func(ctx context.Context, lane int, txn, token string, o *outcomes) error {
		res, err := p.pay.Authorize(ctx, authorizeReq(fmt.Sprintf("lane-%02d", lane), txn, token))
		if err != nil {
			return err
		}
		if o != nil {
			o.add(res)
		}
		return nil
	}
	var wg sync.WaitGroup
	for lane := range lanes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_ = call(ctx, lane, fmt.Sprintf("warm-%s-%d", run, lane), warm[lane], nil)
		}()
	}
	wg.Wait()

	var before, after storecache.Stats
	if tg.st != nil {
		before = tg.st.Stats()
	}
	var o outcomes
	used := cpuTime
	if tg.otherCPU != nil {
		used = func() time.Duration { return cpuTime() + tg.otherCPU() }
	}
	var (
		cpu = used()
		r   loadResult
	)
	err = profile(cfg, "authorize-"+run, func() error {
		r = runLoad(ctx, lanes, cfg.Duration, len(tokens), func(lane, n int) error {
			return call(ctx, lane, fmt.Sprintf("%s-%d", run, n), tokens[n], &o)
		})
		return nil
	})
	if err != nil {
		return nil, err
	}
	cpu = used() - cpu
	if tg.st != nil {
		after = tg.st.Stats()
	}
	out := &AuthorizeRun{
		Scenario:  scenario,
		Path:      tg.path,
		Lanes:     lanes,
		Ops:       r.Ops,
		Errors:    r.Errors,
		Seconds:   r.Elapsed.Seconds(),
		PerS:      r.Rate(),
		Latency:   summarize(r.Latencies),
		Approved:  o.approved,
		Declined:  o.declined,
		Reasons:   o.reasons,
		PerTx:     perTx(before, after),
		CPUs:      ratio(cpu.Seconds(), r.Elapsed.Seconds()),
		CPUPerOp:  ratio(float64(cpu.Microseconds()), float64(r.Ops)),
		TokensOut: r.Ops >= len(tokens),
	}
	if r.FirstErr != nil {
		out.FirstError = fmt.Sprintf("%v: %v", status.Code(r.FirstErr), r.FirstErr)
		if status.Code(r.FirstErr) == codes.Canceled {
			return nil, r.FirstErr
		}
	}
	return out, nil
}

// target is what an Authorize run drives: a POS connection to a gateway,
// its store when it runs in this process (for the commit counters), and
// what its decisions are.
type target struct {
	scenario string
	pos      *pos
	st       *storecache.Store
	path     string
	// prefix keeps the POS transaction ids of different targets apart.
	prefix string
	// otherCPU, when set, returns the CPU time of the gateway's own
	// process, which the run's CPU figures then include.
	otherCPU func() time.Duration
}

// targets returns the world's two scenarios.
func (w *world) targets() map[string]target {
	offline := "central unreachable and this build has no offline caps: every sale is declined central_unavailable, the decline committed durably"
	if w.offline.offline {
		offline = "central unreachable; the gateway approves within its offline caps"
	}
	return map[string]target{
		scenarioOnline:  {scenario: scenarioOnline, pos: w.onlinePOS, st: w.online.st, path: onlinePath},
		scenarioOffline: {scenario: scenarioOffline, pos: w.offlinePOS, st: w.offline.st, path: offline},
	}
}

// onlinePath is what an online sale does.
const onlinePath = "central on loopback decides (its own durable commit); the gateway commits the decision, spent token, settlement and audit record"

func perTx(before, after storecache.Stats) float64 {
	return ratio(float64(after.Decisions+after.Rejected-before.Decisions-before.Rejected), float64(after.Transactions-before.Transactions))
}

// reasonList returns a run's decline reasons as "reason n" pairs, sorted.
func reasonList(m map[string]int) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	out := ""
	for i, k := range keys {
		if i > 0 {
			out += ", "
		}
		out += fmt.Sprintf("%s %d", k, m[k])
	}
	return out
}
