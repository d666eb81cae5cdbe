package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	storegatev1 "storegate/proto/storegate/v1"
)

// lineFlags collects repeated --line SKU:CATEGORY:QTY:PRICE flags.
type lineFlags []*storegatev1.BasketLine

func (l *lineFlags) String() string { return fmt.Sprint(len(*l), " lines") }

func (l *lineFlags) Set(v string) error {
	parts := strings.Split(v, ":")
	if len(parts) != 4 {
		return fmt.Errorf("want SKU:CATEGORY:QTY:PRICE, got %q", v)
	}
	qty, err := strconv.ParseInt(parts[2], 10, 64)
	if err != nil {
		return fmt.Errorf("quantity %q: %v", parts[2], err)
	}
	price, err := strconv.ParseInt(parts[3], 10, 64)
	if err != nil {
		return fmt.Errorf("unit price %q: %v", parts[3], err)
	}
	*l = append(*l, &storegatev1.BasketLine{Sku: parts[0], Category: parts[1], Quantity: qty, UnitPrice: price})
	return nil
}

func runAuthorize(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "authorize", "--lane L --txn ID --line SKU:CAT:QTY:PRICE... (--token T | --token-file F | --scan-id S)",
		"Asks the gateway to authorize a basket, as a lane's POS would. Prints the decision;\nexits 3 when the payment is declined. The total is the lines' sum unless --total is given.")
	addr := addrFlag(fs)
	lane := fs.String("lane", "1", "lane")
	txn := fs.String("txn", "", "POS transaction id (the idempotency key, with the lane)")
	var lines lineFlags
	fs.Var(&lines, "line", "basket line SKU:CATEGORY:QTY:PRICE, price in minor units (repeat)")
	total := fs.Int64("total", -1, "basket total in minor units (default: the lines' sum)")
	currency := fs.String("currency", "JPY", "currency")
	token := fs.String("token", "", "token text or numeric payment code (prefer --token-file: arguments show in ps)")
	tokenFile := fs.String("token-file", "", "read the token from this file (- for stdin)")
	scanID := fs.String("scan-id", "", "authorize a token the lane's scanner read")
	asJSON := fs.Bool("json", false, "print the response as JSON")
	timeout := fs.Duration("timeout", 10*time.Second, "call deadline")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *txn == "" {
		return usagef("--txn is required")
	}
	if len(lines) == 0 {
		return usagef("at least one --line is required")
	}
	req := &storegatev1.AuthorizeRequest{Lane: *lane, PosTransactionId: *txn, Lines: lines, Currency: *currency}
	if *total >= 0 {
		req.Total = *total
	} else {
		for _, l := range lines {
			req.Total += l.Quantity * l.UnitPrice
		}
	}
	switch {
	case *tokenFile != "":
		b, err := readInput(e, *tokenFile)
		if err != nil {
			return err
		}
		req.Credential = &storegatev1.AuthorizeRequest_Token{Token: strings.TrimSpace(string(b))}
	case *token != "":
		req.Credential = &storegatev1.AuthorizeRequest_Token{Token: *token}
	case *scanID != "":
		req.Credential = &storegatev1.AuthorizeRequest_ScanId{ScanId: *scanID}
	default:
		return usagef("one of --token, --token-file or --scan-id is required")
	}
	conn, ctx, done, err := connect(ctx, addr, *timeout)
	if err != nil {
		return err
	}
	defer done()
	res, err := storegatev1.NewPaymentServiceClient(conn).Authorize(ctx, req)
	if err != nil {
		return addr.callError(ctx, err)
	}
	if *asJSON {
		if err := printJSON(e.stdout, res); err != nil {
			return err
		}
	} else {
		printDecision(e.stdout, res)
	}
	if res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		return errDeclined
	}
	return nil
}

// modeMeaning says in words who decided, for printDecision.
var modeMeaning = map[storegatev1.DecisionMode]string{
	storegatev1.DecisionMode_DECISION_MODE_ONLINE:  "the central service decided",
	storegatev1.DecisionMode_DECISION_MODE_OFFLINE: "the store decided alone, within its offline caps: central did not answer",
	storegatev1.DecisionMode_DECISION_MODE_LOCAL:   "the store's own checks declined it (token, freeze list, policy)",
}

func printDecision(w io.Writer, res *storegatev1.AuthorizeResponse) {
	d := res.GetDecision()
	mode := strings.TrimPrefix(d.GetMode().String(), "DECISION_MODE_")
	if m, ok := modeMeaning[d.GetMode()]; ok {
		mode += ": " + m
	}
	again := ""
	if res.GetReplayed() {
		again = " (stored answer to an earlier identical request)"
	}
	if d.GetOutcome() == storegatev1.Outcome_OUTCOME_APPROVED {
		fmt.Fprintf(w, "APPROVED %s %d %s%s\n", strings.TrimPrefix(d.GetMode().String(), "DECISION_MODE_"), d.GetAmount(), d.GetCurrency(), again)
		fmt.Fprintf(w, "  settlement     %s\n  authorization  %s\n", d.GetSettlementId(), d.GetAuthorizationId())
	} else {
		reason := strings.ToLower(strings.TrimPrefix(d.GetReason().String(), "DECLINE_REASON_"))
		fmt.Fprintf(w, "DECLINED %s: %s%s\n", reason, d.GetMessage(), again)
		fmt.Fprintf(w, "  rule           %s\n", d.GetRule())
	}
	fmt.Fprintf(w, "  mode           %s\n", mode)
	fmt.Fprintf(w, "  account        %s\n  token          %s\n", d.GetAccountHint(), d.GetTokenFingerprint())
}

func runReverse(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "reverse", "--lane L --txn ID [--reason TEXT]",
		"Reverses an approved sale. The reversal is queued for the central service like a\nsettlement. Reversing twice returns the first reversal.")
	addr := addrFlag(fs)
	lane := fs.String("lane", "1", "lane of the sale")
	txn := fs.String("txn", "", "POS transaction id of the sale")
	reason := fs.String("reason", "", "why, for the audit log")
	asJSON := fs.Bool("json", false, "print the response as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *txn == "" {
		return usagef("--txn is required")
	}
	conn, ctx, done, err := connect(ctx, addr, callTimeout)
	if err != nil {
		return err
	}
	defer done()
	res, err := storegatev1.NewPaymentServiceClient(conn).Reverse(ctx, &storegatev1.ReverseRequest{Lane: *lane, PosTransactionId: *txn, Reason: *reason})
	if err != nil {
		return addr.callError(ctx, err)
	}
	if *asJSON {
		return printJSON(e.stdout, res)
	}
	again := ""
	if res.GetAlreadyReversed() {
		again = " (already reversed before)"
	}
	fmt.Fprintf(e.stdout, "REVERSED %d %s%s\n  reversal       %s\n", res.GetAmount(), res.GetCurrency(), again, res.GetReversalId())
	return nil
}

func runStatus(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "status", "[--addr ADDR] [--json]", "Shows the gateway's state: central reachability, the settlement queue, keys, audit.")
	addr := addrFlag(fs)
	asJSON := fs.Bool("json", false, "print the response as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conn, ctx, done, err := connect(ctx, addr, callTimeout)
	if err != nil {
		return err
	}
	defer done()
	st, err := storegatev1.NewPaymentServiceClient(conn).GetStatus(ctx, &storegatev1.GetStatusRequest{})
	if err != nil {
		return addr.callError(ctx, err)
	}
	if *asJSON {
		return printJSON(e.stdout, st)
	}
	w := e.stdout
	fmt.Fprintf(w, "store            %s (storegated %s, up since %s)\n", st.GetStoreId(), st.GetVersion(), st.GetStartedAt().AsTime().Local().Format(time.DateTime))
	fmt.Fprintf(w, "central          %s\n", centralSummary(st))
	age := "-"
	if st.GetOutboxOldestAge() != nil {
		age = st.GetOutboxOldestAge().AsDuration().Round(time.Second).String()
	}
	fmt.Fprintf(w, "outbox           %d settlements waiting, oldest %s, %d disputed\n", st.GetOutboxDepth(), age, st.GetDisputedSettlements())
	if st.GetOfflineMaxStoreExposure() > 0 {
		fmt.Fprintf(w, "offline exposure %d of %d; caps %d per sale, %d per account\n", st.GetOfflineExposure(), st.GetOfflineMaxStoreExposure(),
			st.GetOfflineMaxAmountPerTransaction(), st.GetOfflineMaxAmountPerAccount())
	} else {
		fmt.Fprintf(w, "offline exposure %d; offline approval is off\n", st.GetOfflineExposure())
	}
	fmt.Fprintf(w, "keyset           version %d\n", st.GetKeysetVersion())
	fmt.Fprintf(w, "policy           chain-wide version %d, store version %d; freeze list version %d\n",
		st.GetPolicyVersion(), st.GetStorePolicyVersion(), st.GetFreezeVersion())
	fmt.Fprintf(w, "audit log        %d records\n", st.GetAuditRecords())
	for _, s := range st.GetScanners() {
		fmt.Fprintf(w, "scanner lane %-3s %s %s since %s, %d frames, %d dropped %s\n", s.GetLane(), s.GetDevice(),
			strings.TrimPrefix(s.GetState().String(), "SCANNER_STATE_"), s.GetSince().AsTime().Local().Format(time.DateTime),
			s.GetFrames(), s.GetDropped(), s.GetLastError())
	}
	return nil
}

// centralSummary says in words whether the gateway asks central about
// sales (its breaker) and how its calls to central went, read together so
// that they never contradict each other.
func centralSummary(st *storegatev1.GetStatusResponse) string {
	at := func(ts *timestamppb.Timestamp) string { return ts.AsTime().Local().Format(time.DateTime) }
	if !st.GetCentralCalled() {
		return "not contacted yet: the policy stream or the first sale will ask it"
	}
	contact := "no call has reached it since start"
	if st.GetLastCentralContact() != nil {
		contact = "last contact " + at(st.GetLastCentralContact())
	}
	since := ""
	if st.GetCentralStateSince() != nil {
		since = " since " + at(st.GetCentralStateSince())
	}
	var s string
	switch st.GetCentralState() {
	case storegatev1.CentralState_CENTRAL_STATE_ONLINE:
		if st.GetCentralReachable() {
			s = "online" + since + ": every sale asks it; " + contact
		} else {
			s = "online" + since + ", but the last call failed: sales still ask it; " + contact
		}
	case storegatev1.CentralState_CENTRAL_STATE_OFFLINE:
		if st.GetCentralReachable() {
			// Other calls reach central, but the last sale went unanswered.
			s = "offline" + since + ": sales went unanswered though other calls reach it; a sale probes again after the cool-down; " + contact
		} else {
			s = "offline" + since + ": sales are decided at the store until a sale probes it; " + contact
		}
	case storegatev1.CentralState_CENTRAL_STATE_PROBING:
		s = "probing" + since + ": one sale is asking whether it is back, the others are decided at the store; " + contact
	default:
		s = strings.ToLower(strings.TrimPrefix(st.GetCentralState().String(), "CENTRAL_STATE_")) + since + "; " + contact
	}
	return fmt.Sprintf("%s; breaker opened %d times", s, st.GetBreakerOpened())
}

func printJSON(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{Multiline: true}.Marshal(m)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, string(b))
	return err
}

// rpcError turns a gRPC error into a message for a person.
func rpcError(err error) error {
	if s, ok := status.FromError(err); ok {
		return fmt.Errorf("%s: %s", s.Code(), s.Message())
	}
	return err
}

func readInput(e *env, path string) ([]byte, error) {
	if path == "-" {
		return io.ReadAll(io.LimitReader(e.stdin, 1<<20))
	}
	return os.ReadFile(path)
}
