package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"storegate/central"
	"storegate/central/boltstore"
	"storegate/gateway"
	"storegate/storecache"
)

// Report is what a run found.
type Report struct {
	// Seed replays the run's random choices (--seed); Elapsed is its
	// length.
	Seed    uint64
	Elapsed time.Duration
	// Kills counts the SIGKILLs of storegated, Restarts the starts after
	// them that served.
	Kills    int64
	Restarts int64
	// KillsStarting counts the kills of a storegated still starting.
	KillsStarting int64
	// Outages counts the times HQ went down: killed, or stopped (SIGSTOP:
	// slower than any deadline).
	Outages, HQKills, HQPauses int64
	// Power is what the power cuts were, in a power test; nil in a crash
	// test.
	Power *PowerReport

	// What the POS lanes heard: Unknown counts the sales whose POS gave
	// up before hearing an answer, DeclinedBy the declines by reason, and
	// Reversed the reversals heard.
	Sales, ApprovedOnline, ApprovedOffline, Declined, Unknown int
	DeclinedBy                                                map[string]int
	Reversed                                                  int
	// AnsweredAfterRetry counts the sales a POS had to send more than
	// once before it heard an answer; Retries the calls retried; ResentSame
	// the answered sales asked again that got the same answer.
	AnsweredAfterRetry  int
	Retries, ResentSame int64
	// UnknownCommitted counts the sales a POS gave up on that the
	// gateway had decided all the same.
	UnknownCommitted int

	// What central's books hold for the store, and how many settlements
	// the gateway holds as disputed.
	CapturesBooked, ReversalsBooked, Disputed int
	// HoldsOpen and HoldsVoided count authorizations central approved
	// that no settlement captured: sales the gateway never committed
	// (it died first, or decided them offline as declines).
	HoldsOpen, HoldsVoided int
	// HoldsTakenOffline counts offline captures that took a hold central
	// had made for the same sale (the gateway never heard the approval).
	HoldsTakenOffline int

	// MaxExposure is the largest offline exposure sampled, of
	// ExposureCap, over Samples status samples (SamplesOffline of them
	// with the breaker not closed).
	MaxExposure, ExposureCap int64
	Samples, SamplesOffline  int64

	// Lost counts approvals (heard by a POS, or committed by the gateway)
	// that are neither in central's books nor disputed, and reversals
	// heard but not booked. Duplicated counts sales booked more than once.
	Lost, Duplicated int
	// Problems lists every violation found, Lost and Duplicated included.
	Problems []string
}

// OK reports whether the run found nothing wrong.
func (r *Report) OK() bool {
	return r != nil && r.Lost == 0 && r.Duplicated == 0 && len(r.Problems) == 0
}

// Print writes the report for a person.
func (r *Report) Print(w io.Writer) {
	name := "crashtest"
	if r.Power != nil {
		name = "powertest"
		fmt.Fprintf(w, "\npowertest: %d power cuts, %d restarts of storegated; HQ down %d times (%d killed, %d stopped); %s; seed %d\n",
			r.Power.Cuts, r.Restarts, r.Outages, r.HQKills, r.HQPauses, r.Elapsed.Round(time.Second), r.Seed)
		r.Power.print(w)
	} else {
		fmt.Fprintf(w, "\ncrashtest: %d kills of storegated (%d while it started), %d restarts; HQ down %d times (%d killed, %d stopped); %s; seed %d\n",
			r.Kills, r.KillsStarting, r.Restarts, r.Outages, r.HQKills, r.HQPauses, r.Elapsed.Round(time.Second), r.Seed)
	}
	reasons := make([]string, 0, len(r.DeclinedBy))
	for k, v := range r.DeclinedBy {
		reasons = append(reasons, fmt.Sprintf("%s %d", k, v))
	}
	sort.Strings(reasons)
	fmt.Fprintf(w, "  POS lanes   %d sales: %d approved online, %d approved offline, %d declined (%s), %d unknown (%d of them decided); %d reversed\n",
		r.Sales, r.ApprovedOnline, r.ApprovedOffline, r.Declined, strings.Join(reasons, ", "), r.Unknown, r.UnknownCommitted, r.Reversed)
	fmt.Fprintf(w, "              %d calls retried after a kill or timeout, %d sales answered only after a retry; %d answers asked again, each the same\n",
		r.Retries, r.AnsweredAfterRetry, r.ResentSame)
	fmt.Fprintf(w, "  HQ books    %d captures and %d reversals booked; %d disputed; %d holds never captured (%d voided, %d still held); %d offline captures took central's hold for the same sale\n",
		r.CapturesBooked, r.ReversalsBooked, r.Disputed, r.HoldsOpen+r.HoldsVoided, r.HoldsVoided, r.HoldsOpen, r.HoldsTakenOffline)
	fmt.Fprintf(w, "  exposure    at most %d of its cap %d over %d samples (%d with central offline)\n", r.MaxExposure, r.ExposureCap, r.Samples, r.SamplesOffline)
	fmt.Fprintf(w, "  lost %d, duplicated %d\n", r.Lost, r.Duplicated)
	for i, p := range r.Problems {
		if i == 50 {
			fmt.Fprintf(w, "  ... and %d more problems\n", len(r.Problems)-i)
			break
		}
		fmt.Fprintf(w, "  PROBLEM: %s\n", p)
	}
	if r.OK() {
		fmt.Fprintln(w, name+" OK: every approval is in central's books exactly once, nothing else is, the caps held and both files check.")
	} else {
		fmt.Fprintln(w, name+" FAILED")
	}
}

// check reads both files with the daemons stopped and holds them against
// each other and against what the POS lanes heard.
func (h *harness) check() (*Report, error) {
	ctx := context.Background()
	r := &Report{
		Seed: h.cfg.Seed, Kills: h.stats.kills.Load(), Restarts: h.stats.restarts.Load(), KillsStarting: h.stats.killsStarting.Load(),
		Outages: h.stats.outages.Load(), HQKills: h.stats.hqKills.Load(), HQPauses: h.stats.hqPauses.Load(),
		Retries: h.stats.retries.Load(), ResentSame: h.stats.resentSame.Load(),
		MaxExposure: h.stats.maxExposure.Load(), ExposureCap: h.cfg.Caps.MaxStoreExposure,
		Samples: h.stats.samples.Load(), SamplesOffline: h.stats.samplesOffline.Load(),
		DeclinedBy: map[string]int{},
	}
	if h.power != nil {
		r.Power = h.power.report()
	}
	problem := func(format string, args ...any) { r.Problems = append(r.Problems, fmt.Sprintf(format, args...)) }
	h.mu.Lock()
	r.Problems = append(r.Problems, h.problems...)
	h.mu.Unlock()

	// The gateway's store: sound, its audit chain whole, its outbox empty.
	st := storecache.NewStore(filepath.Join(h.dir, "store", "storegate.db"))
	st.ReadOnly, st.Timeout = true, 5*time.Second
	if err := st.Open(context.Background()); err != nil {
		return nil, err
	}
	defer st.Close(context.Background())
	if err := st.Check(); err != nil {
		problem("gateway store: %v", err)
	}
	if _, err := st.VerifyAudit(ctx); err != nil {
		problem("gateway audit log: %v", err)
	}
	ob, err := st.OutboxStats(ctx)
	if err != nil {
		return nil, err
	}
	if ob.Depth != 0 || ob.OfflineExposure != 0 {
		problem("gateway outbox after the drain: %+v, want empty", ob)
	}
	disputedList, err := st.DisputedSettlements(ctx, 1<<20)
	if err != nil {
		return nil, err
	}
	disputed := make(map[string]gateway.DisputedSettlement)
	for _, d := range disputedList {
		disputed[d.Settlement.ID] = d
		problem("settlement %s (%s %s/%s) disputed: %s", d.Settlement.ID, d.Settlement.Kind, d.Settlement.Lane, d.Settlement.POSTxnID, d.Message)
	}
	r.Disputed = len(disputed)

	// Central's books: sound and balanced.
	file := boltstore.New(filepath.Join(h.dir, "hq", "central.db"))
	file.Timeout = 5 * time.Second
	ledger := central.NewLedger(file)
	if err := ledger.Open(ctx); err != nil {
		return nil, err
	}
	defer ledger.Close(ctx)
	if err := file.Check(); err != nil {
		problem("central ledger: %v", err)
	}
	books, err := ledger.Books(ctx)
	if err != nil {
		return nil, err
	}
	if err := books.Verify(); err != nil {
		problem("central books: %v", err)
	}

	// Every sale the lanes made, and the gateway's stored decision on it.
	sales := h.journal.all()
	r.Sales = len(sales)
	bySale := make(map[string]*sale, len(sales))
	stored := make(map[string]*gateway.StoredDecision, len(sales))
	for _, s := range sales {
		bySale[s.key()] = s
		d, err := st.LookupDecision(ctx, gateway.IdempotencyKey{Lane: s.Lane, POSTxnID: s.Txn})
		if err != nil {
			return nil, err
		}
		if d != nil {
			stored[s.key()] = d
		}
	}

	// Central's side: every booked settlement of the store is a committed
	// approval (or its reversal), and no sale is booked twice.
	captures := make(map[string]central.BookedSettlement) // by settlement id
	capturesBySale := make(map[string]int)
	reversalOf := make(map[string]string) // capture id → reversal id
	for _, b := range books.Settlements {
		if b.StoreID != storeID {
			continue
		}
		key := b.Lane + "/" + b.POSTxnID
		d := stored[key]
		if b.Status != gateway.SettlementAccepted {
			if _, ok := disputed[b.ID]; !ok {
				problem("central refused %s (%s): %s, but the gateway holds no dispute for it", b.ID, key, b.Message)
			}
			continue
		}
		switch b.Kind {
		case gateway.SettlementCapture:
			r.CapturesBooked++
			captures[b.ID] = b
			if b.Mode == gateway.ModeOffline && b.AuthorizationID != "" {
				r.HoldsTakenOffline++
			}
			capturesBySale[key]++
			if capturesBySale[key] == 2 {
				r.Duplicated++
				problem("sale %s booked twice", key)
			}
			switch {
			case d == nil:
				problem("capture %s for %s is booked, but the gateway stored no decision for the sale", b.ID, key)
			case !d.Decision.Approved || d.Decision.SettlementID != b.ID:
				problem("capture %s for %s is booked, but the gateway's decision is %s with settlement %q", b.ID, key, d.Decision.Outcome(), d.Decision.SettlementID)
			}
			if s := bySale[key]; s != nil && s.Outcome == outcomeDeclined {
				problem("capture %s for %s is booked, but its POS was told declined (%s)", b.ID, key, s.Reason)
			}
		case gateway.SettlementReversal:
			r.ReversalsBooked++
			reversalOf[b.ReversesID] = b.ID
			if d == nil || d.Reversal == nil || d.Reversal.ID != b.ID {
				problem("reversal %s for %s is booked, but the gateway stored no such reversal", b.ID, key)
			}
		}
	}

	// The POS's side: every approval heard, and every approval the gateway
	// committed, is booked once (or disputed, visibly); every reversal
	// heard is booked.
	for _, s := range sales {
		d := stored[s.key()]
		if s.Outcome != outcomeUnknown && s.Attempts > 1 {
			r.AnsweredAfterRetry++
		}
		switch s.Outcome {
		case outcomeApproved:
			if s.Mode == "offline" {
				r.ApprovedOffline++
			} else {
				r.ApprovedOnline++
			}
			if d == nil || !d.Decision.Approved || d.Decision.SettlementID != s.SettlementID {
				problem("%s: the POS heard approved (%s) but the gateway stored %v", s.key(), s.SettlementID, d)
				// The store lost the approval (only a power cut can): lost
				// for good unless its settlement reached HQ first.
				_, booked := captures[s.SettlementID]
				if _, ok := disputed[s.SettlementID]; !booked && !ok {
					r.Lost++
					problem("LOST: %s approved (%s, %s) is neither booked nor in the gateway's store", s.key(), s.SettlementID, s.Mode)
				}
			}
		case outcomeDeclined:
			r.Declined++
			r.DeclinedBy[s.Reason]++
			if d != nil && d.Decision.Approved {
				problem("%s: the POS heard declined but the gateway stored an approval", s.key())
			}
		case outcomeUnknown:
			r.Unknown++
			if d != nil {
				r.UnknownCommitted++
			}
		}
		if d == nil || !d.Decision.Approved {
			continue
		}
		id := d.Decision.SettlementID
		if _, booked := captures[id]; !booked {
			if _, ok := disputed[id]; !ok {
				r.Lost++
				problem("LOST: %s approved (%s, %s, POS heard %s) is neither booked nor disputed", s.key(), id, d.Decision.Mode, s.Outcome)
			}
		}
		if s.ReversalID != "" {
			r.Reversed++
			if reversalOf[id] != s.ReversalID {
				if _, ok := disputed[s.ReversalID]; !ok {
					r.Lost++
					problem("LOST: reversal %s of %s was heard but is not booked", s.ReversalID, s.key())
				}
			}
		}
	}

	// Held money no sale stands for: counted, and never behind a sale the
	// gateway approved.
	for _, a := range books.Authorizations {
		if a.StoreID != storeID || (a.Status != central.AuthHeld && a.Status != central.AuthVoided) {
			continue
		}
		if a.Status == central.AuthHeld {
			r.HoldsOpen++
		} else {
			r.HoldsVoided++
		}
		key := a.Lane + "/" + a.POSTxnID
		if d := stored[key]; d != nil && d.Decision.Approved {
			if _, ok := disputed[d.Decision.SettlementID]; !ok {
				problem("authorization %s for %s is %s, but the gateway approved the sale (%s)", a.ID, key, a.Status, d.Decision.SettlementID)
			}
		}
		if bySale[key] == nil {
			problem("authorization %s for %s: no lane made that sale", a.ID, key)
		}
	}
	if r.MaxExposure > r.ExposureCap {
		problem("offline exposure reached %d, over its cap %d", r.MaxExposure, r.ExposureCap)
	}
	if err := h.writeJournal(sales); err != nil {
		problem("write the journal: %v", err)
	}
	return r, nil
}

// writeJournal keeps what every lane heard, one JSON line per sale, beside
// the logs.
func (h *harness) writeJournal(sales []*sale) error {
	f, err := os.Create(filepath.Join(h.dir, "logs", "pos.jsonl"))
	if err != nil {
		return err
	}
	enc := json.NewEncoder(f)
	for _, s := range sales {
		if err := enc.Encode(s); err != nil {
			f.Close()
			return err
		}
	}
	return f.Close()
}
