package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/credentials"

	"storegate/certs"
	"storegate/gateway"
	"storegate/hqkeys"
	storegatev1 "storegate/proto/storegate/v1"
)

// storeID is the crash test's store.
const storeID = "crash-store"

// Config is one crash test run.
type Config struct {
	// Bin holds storegated and storegate-hq.
	Bin string
	// Dir is the run's folder (keys, state, logs); empty makes a temporary
	// one, removed after a clean run unless Keep is set.
	Dir  string
	Keep bool
	// Kills is how many times storegated is killed with SIGKILL.
	Kills int
	// PowerCuts, when positive, makes the run a power test (power.go):
	// both daemons keep their data on lazy file systems, and the run cuts
	// the power this many times instead of killing storegated.
	PowerCuts int
	// Lanes is how many POS lanes sell at once.
	Lanes int
	// Accounts is how many customer accounts the sales are spread over.
	Accounts int
	// OutageEvery takes the central service down once per that many kills
	// (killed or stopped, in turn), for one to three kills; 0 never does.
	OutageEvery int
	// MinUp and MaxUp bound how long storegated runs between kills.
	MinUp, MaxUp time.Duration
	// Caps are storegated's offline caps.
	Caps gateway.OfflineCaps
	// HoldExpiry is storegate-hq's: short, so that holds are voided (and
	// late captures revive them) during the run.
	HoldExpiry time.Duration
	// Seed seeds every random choice; 0 picks one.
	Seed uint64
	// Out receives the progress and the report.
	Out io.Writer
}

// DefaultConfig returns the configuration of `make crashtest`, but for Bin.
func DefaultConfig() Config {
	return Config{
		Kills:       500,
		Lanes:       8,
		Accounts:    20,
		OutageEvery: 10,
		MinUp:       20 * time.Millisecond,
		MaxUp:       400 * time.Millisecond,
		Caps:        gateway.OfflineCaps{MaxAmountPerTransaction: 3000, MaxAmountPerAccount: 6000, MaxStoreExposure: 30000},
		HoldExpiry:  3 * time.Second,
		Out:         os.Stdout,
	}
}

func (c *Config) validate() error {
	switch {
	case c.Bin == "":
		return errors.New("the folder of the binaries is required")
	case c.Kills < 1 && c.PowerCuts < 1:
		return errors.New("kills: at least 1")
	case c.Lanes < 1 || c.Accounts < 1:
		return errors.New("lanes and accounts: at least 1 each")
	case c.MinUp <= 0 || c.MaxUp < c.MinUp:
		return errors.New("uptime: 0 < min <= max")
	case !c.Caps.Enabled():
		return errors.New("offline caps: all three must be positive")
	case c.HoldExpiry <= 0:
		return errors.New("hold expiry: must be positive")
	}
	return nil
}

// harness is one run: the two daemons, the lanes that drive them, and what
// was seen.
type harness struct {
	cfg  Config
	dir  string
	keys *hqkeys.Keys
	// pki holds the development CAs and certificates: every link is
	// mutual TLS, each lane's POS with its own certificate.
	pki     string
	hq, gw  *proc
	rng     *rand.Rand
	journal journal
	// power holds the lazy file systems of a power test; nil in a crash
	// test.
	power *power

	stats struct {
		kills, killsStarting, restarts atomic.Int64
		outages, hqKills, hqPauses     atomic.Int64
		retries, resentSame            atomic.Int64
		samples, samplesOffline        atomic.Int64
		maxExposure                    atomic.Int64
	}
	mu       sync.Mutex
	problems []string
}

// problem records something that must not happen.
func (h *harness) problem(format string, args ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.problems) < 1000 {
		h.problems = append(h.problems, fmt.Sprintf(format, args...))
	}
}

func (h *harness) logf(format string, args ...any) {
	fmt.Fprintf(h.cfg.Out, h.cfg.name()+": "+format+"\n", args...)
}

// name is the run's name in what it prints.
func (c *Config) name() string {
	if c.PowerCuts > 0 {
		return "powertest"
	}
	return "crashtest"
}

// Run runs a crash test and returns its report. An error means the run
// itself could not go on (a daemon that would not start); what the run
// found wrong is in the report.
func Run(ctx context.Context, cfg Config) (rep *Report, err error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Out == nil {
		cfg.Out = io.Discard
	}
	if cfg.Seed == 0 {
		cfg.Seed = rand.Uint64()
	}
	h := &harness{cfg: cfg, rng: rand.New(rand.NewPCG(cfg.Seed, 1))}
	h.dir = cfg.Dir
	if h.dir == "" {
		if h.dir, err = os.MkdirTemp("", "storegate-crash-"); err != nil {
			return nil, err
		}
		defer func() {
			if err == nil && rep.OK() && !cfg.Keep {
				os.RemoveAll(h.dir)
			} else {
				h.logf("state, keys and logs kept in %s", h.dir)
			}
		}()
	}
	start := time.Now()
	defer func() { _ = h.power.close() }()
	if err := h.setup(ctx); err != nil {
		h.stopAll()
		return nil, err
	}
	if h.power != nil {
		h.logf("seed %d; %d power cuts, %d lanes, HQ on %s, storegated on %s, in %s", cfg.Seed, cfg.PowerCuts, cfg.Lanes, h.hq.addr, h.gw.addr, h.dir)
	} else {
		h.logf("seed %d; %d kills, %d lanes, HQ on %s, storegated on %s, in %s", cfg.Seed, cfg.Kills, cfg.Lanes, h.hq.addr, h.gw.addr, h.dir)
	}
	if err := h.chaos(ctx); err != nil {
		h.stopAll()
		return nil, err
	}
	if err := h.power.close(); err != nil {
		return nil, err
	}
	rep, err = h.check()
	if err != nil {
		return nil, err
	}
	rep.Elapsed = time.Since(start)
	rep.Print(cfg.Out)
	return rep, nil
}

// setup makes HQ's keys and the certificates, picks the two addresses,
// writes storegated's configuration and starts both daemons.
func (h *harness) setup(ctx context.Context) error {
	for _, d := range []string{"logs", "hq", "store"} {
		if err := os.MkdirAll(filepath.Join(h.dir, d), 0o700); err != nil {
			return err
		}
	}
	// The daemons' data folders: hq/ and store/, or in a power test the lazy
	// file systems over them.
	hqData, storeData := filepath.Join(h.dir, "hq"), filepath.Join(h.dir, "store")
	if h.cfg.PowerCuts > 0 {
		var err error
		if h.power, err = mountPower(h.dir); err != nil {
			return err
		}
		hqData, storeData = h.power.hqDir, h.power.storeDir
	}
	keysDir := filepath.Join(h.dir, "keys")
	var err error
	if h.keys, err = hqkeys.Init(keysDir); err != nil {
		return err
	}
	if err := h.makeCerts(); err != nil {
		return err
	}
	pki := func(name string) string { return filepath.Join(h.pki, name) }
	gwCert, gwKey := certs.CertFiles(certs.Gateway(certs.DevChain, storeID))
	hqAddr, err := freePort(h.rng)
	if err != nil {
		return err
	}
	gwAddr, err := freePort(h.rng)
	if err != nil {
		return err
	}
	// HQ's admin port is unused here; port 0 keeps it off the fixed default,
	// which another HQ on this machine (a test running beside this one) may hold.
	hqArgs := []string{"--listen", hqAddr, "--admin-listen", "127.0.0.1:0", "--data", hqData, "--keys", keysDir,
		"--hold-expiry", h.cfg.HoldExpiry.String(),
		"--tls-cert", pki(certs.ServerCertFile), "--tls-key", pki(certs.ServerKeyFile), "--tls-client-ca", pki(certs.CAGateway.CertFile())}
	for i := range h.cfg.Accounts {
		// Funded far beyond what the run can spend: a refusal would be a
		// finding, not a balance running out.
		hqArgs = append(hqArgs, "--account", fmt.Sprintf("acct-%04d=1000000000000", i))
	}
	h.hq = newProc(h.cfg.Bin, h.dir, "storegate-hq", hqAddr, hqArgs...)

	cfgPath := filepath.Join(h.dir, "storegated.yaml")
	c := h.cfg.Caps
	yaml := fmt.Sprintf(`store_id: %s
listen: %s
tls:
  cert_file: %s
  key_file: %s
  client_ca_file: %s
data_dir: %s
admin:
  # Beside the run's files rather than in data_dir, so that the store's
  # folder holds files only.
  socket: %s
root_public_key: %s
keyset_file: %s
central:
  address: %s
  tls:
    ca_file: %s
    cert_file: %s
    key_file: %s
  timeout: 300ms
  breaker_failures: 3
  breaker_cooldown: 1s
offline:
  max_amount_per_transaction: %d
  max_amount_per_account: %d
  max_store_exposure: %d
metrics:
  # Off: the default loopback port may be held by another gateway on this
  # machine (a test running beside this one).
  listen: off
forward:
  batch: 50
  batch_wait: 20ms
  interval: 200ms
  max_backoff: 1s
log_level: info
`, storeID, gwAddr, pki(certs.ServerCertFile), pki(certs.ServerKeyFile), pki(certs.CAPOS.CertFile()),
		storeData, filepath.Join(h.dir, "admin.sock"), filepath.Join(keysDir, "root.pub"), filepath.Join(keysDir, "keyset.cose"),
		hqAddr, pki(certs.CAServer.CertFile()), pki(gwCert), pki(gwKey), c.MaxAmountPerTransaction, c.MaxAmountPerAccount, c.MaxStoreExposure)
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o600); err != nil {
		return err
	}
	h.gw = newProc(h.cfg.Bin, h.dir, "storegated", gwAddr, "--config", cfgPath)

	if err := h.hq.start(ctx); err != nil {
		return err
	}
	return h.gw.start(ctx)
}

// makeCerts makes the development CAs and certificates: the default set for
// the crash test's store, and a POS certificate for every lane past it.
func (h *harness) makeCerts() error {
	h.pki = filepath.Join(h.dir, "tls")
	if _, err := certs.MakeDev(h.pki, certs.DevOptions{Store: storeID}); err != nil {
		return err
	}
	for i := len(certs.DefaultDevLanes); i < h.cfg.Lanes; i++ {
		if _, _, err := certs.IssueDev(h.pki, certs.POS(certs.DevChain, storeID, fmt.Sprint(i+1)), certs.DevOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// dial connects to the gateway as id, with id's certificate, reconnecting
// quickly after each restart.
func (h *harness) dial(id certs.Identity) (*grpc.ClientConn, error) {
	cert, key := certs.CertFiles(id)
	cfg, err := certs.ClientConfig(filepath.Join(h.pki, certs.CAServer.CertFile()), filepath.Join(h.pki, cert), filepath.Join(h.pki, key), "")
	if err != nil {
		return nil, err
	}
	return grpc.NewClient(h.gw.addr, grpc.WithTransportCredentials(credentials.NewTLS(cfg)),
		grpc.WithConnectParams(grpc.ConnectParams{
			Backoff:           backoff.Config{BaseDelay: 10 * time.Millisecond, Multiplier: 1.6, Jitter: 0.2, MaxDelay: 200 * time.Millisecond},
			MinConnectTimeout: 2 * time.Second,
		}))
}

// chaos drives the lanes and the sampler while it kills and restarts
// storegated, and takes HQ down and up; then it brings both up, lets the
// lanes finish, drains the outbox and stops both daemons cleanly.
func (h *harness) chaos(ctx context.Context) error {
	// The sampler watches the store as its supervisor; each lane sells
	// with its own POS certificate.
	conn, err := h.dial(certs.Supervisor(certs.DevChain, storeID, certs.DefaultDevSupervisor))
	if err != nil {
		return err
	}
	defer conn.Close()
	client := storegatev1.NewPaymentServiceClient(conn)

	poses := make([]*pos, h.cfg.Lanes)
	for i := range poses {
		lane := fmt.Sprint(i + 1)
		laneConn, err := h.dial(certs.POS(certs.DevChain, storeID, lane))
		if err != nil {
			return err
		}
		defer laneConn.Close()
		poses[i] = &pos{h: h, lane: lane, client: storegatev1.NewPaymentServiceClient(laneConn), key: h.keys.Token,
			rng: rand.New(rand.NewPCG(h.cfg.Seed, uint64(i+2)))}
	}

	stopLanes, stopSampler := make(chan struct{}), make(chan struct{})
	var lanes, sampler sync.WaitGroup
	for _, p := range poses {
		lanes.Go(func() { p.run(ctx, stopLanes) })
	}
	sampler.Go(func() { h.sample(ctx, client, stopSampler) })
	defer func() {
		// On an early return the lanes must not outlive the run.
		select {
		case <-stopLanes:
		default:
			close(stopLanes)
		}
		lanes.Wait()
		select {
		case <-stopSampler:
		default:
			close(stopSampler)
		}
		sampler.Wait()
	}()

	rounds := h.cfg.Kills
	if h.power != nil {
		rounds = h.cfg.PowerCuts
	}
	outage, outageLeft, report := "", 0, time.Now()
	for k := 1; k <= rounds; k++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		up := h.cfg.MinUp + time.Duration(h.rng.Int64N(int64(h.cfg.MaxUp-h.cfg.MinUp)+1))
		time.Sleep(up)

		if outage == "" && h.cfg.OutageEvery > 0 && k%h.cfg.OutageEvery == 0 {
			if outage, err = h.centralDown(); err != nil {
				return err
			}
			outageLeft = 1 + h.rng.IntN(3)
		}
		if h.power != nil {
			if outage, err = h.powerCut(ctx, k, outage); err != nil {
				return err
			}
		} else if err := h.killGateway(ctx); err != nil {
			return err
		}
		if outage != "" {
			if outageLeft--; outageLeft == 0 {
				if err := h.centralUp(outage); err != nil {
					return err
				}
				outage = ""
			}
		}
		if time.Since(report) > 10*time.Second {
			report = time.Now()
			h.logf("%d/%d rounds, %d sales so far", k, rounds, len(h.journal.all()))
		}
	}
	if outage != "" {
		if err := h.centralUp(outage); err != nil {
			return err
		}
	}

	// Wind down: the lanes finish the sale under way, the outbox drains.
	close(stopLanes)
	lanes.Wait()
	if err := h.waitDrained(ctx, client); err != nil {
		return err
	}
	close(stopSampler)
	sampler.Wait()
	if err := h.gw.term(); err != nil {
		return err
	}
	return h.hq.term()
}

// killGateway kills storegated (now and then again while it starts) and
// starts it again.
func (h *harness) killGateway(ctx context.Context) error {
	if err := h.gw.kill(); err != nil {
		h.problem("storegated died on its own: %v", err)
	}
	h.stats.kills.Add(1)
	if h.rng.IntN(20) == 0 {
		// Now and then, kill it again while it starts: opening the
		// store, applying the keyset, before it serves.
		if err := h.gw.launch(); err != nil {
			return err
		}
		time.Sleep(time.Duration(h.rng.IntN(30)) * time.Millisecond)
		_ = h.gw.kill()
		h.stats.killsStarting.Add(1)
	}
	if err := h.gw.start(ctx); err != nil {
		return err
	}
	h.stats.restarts.Add(1)
	return nil
}

// centralDown takes HQ down, killed or stopped in turn, and says which.
func (h *harness) centralDown() (string, error) {
	h.stats.outages.Add(1)
	if h.stats.outages.Load()%2 == 1 {
		if err := h.hq.kill(); err != nil {
			return "", err
		}
		h.stats.hqKills.Add(1)
		return "killed", nil
	}
	h.hq.pause()
	h.stats.hqPauses.Add(1)
	return "stopped", nil
}

func (h *harness) centralUp(how string) error {
	if how == "stopped" {
		h.hq.resume()
		return nil
	}
	return h.hq.start(context.Background())
}

// sample reads the gateway's status until stop, checking that the offline
// exposure never exceeds its cap.
func (h *harness) sample(ctx context.Context, client storegatev1.PaymentServiceClient, stop <-chan struct{}) {
	for {
		select {
		case <-stop:
			return
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := client.GetStatus(cctx, &storegatev1.GetStatusRequest{})
		cancel()
		if err != nil {
			continue // being killed or restarted
		}
		h.stats.samples.Add(1)
		if st.GetCentralState() != storegatev1.CentralState_CENTRAL_STATE_ONLINE {
			h.stats.samplesOffline.Add(1)
		}
		e := st.GetOfflineExposure()
		for {
			cur := h.stats.maxExposure.Load()
			if e <= cur || h.stats.maxExposure.CompareAndSwap(cur, e) {
				break
			}
		}
		if e > h.cfg.Caps.MaxStoreExposure {
			h.problem("offline exposure %d exceeds its cap %d", e, h.cfg.Caps.MaxStoreExposure)
		}
	}
}

// waitDrained waits until central has acknowledged every settlement.
func (h *harness) waitDrained(ctx context.Context, client storegatev1.PaymentServiceClient) error {
	deadline := time.Now().Add(2 * time.Minute)
	for {
		cctx, cancel := context.WithTimeout(ctx, time.Second)
		st, err := client.GetStatus(cctx, &storegatev1.GetStatusRequest{})
		cancel()
		if err == nil && st.GetOutboxDepth() == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the outbox did not drain within 2 minutes (%v, %v); storegated's log ends:\n%s", st, err, tail(h.gw.logPath, 20))
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// stopAll kills whatever still runs, after a run that could not go on.
func (h *harness) stopAll() {
	var killed []*proc
	for _, p := range []*proc{h.gw, h.hq} {
		if p == nil {
			continue
		}
		if ended, _ := p.exited(); !ended {
			if p.paused {
				p.resume()
			}
			_ = p.sigkill()
			killed = append(killed, p)
		}
	}
	// A process waiting on a file system whose power is cut dies only once
	// the file system answers it.
	_ = h.power.close()
	for _, p := range killed {
		<-p.done
	}
}
