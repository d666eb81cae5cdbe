package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/devices"
	storegatev1 "storegate/proto/storegate/v1"
)

func runScan(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "scan", "--device PATH [--aim ]Q1] [--terminator cr] (TEXT | --file FILE)",
		"Writes one frame to a serial device as a barcode scanner would: the AIM symbology\nidentifier, the text, the terminator. For tests, demos, and checks in a store over a\nloopback cable or a linked pseudo-terminal. A payment token is only accepted from a\n2D symbology (]Q1 QR, ]d2 DataMatrix), so give --aim ]Q1 for tokens.")
	device := fs.String("device", "", "serial device or pseudo-terminal to write to")
	aim := fs.String("aim", "", "AIM symbology identifier, for example ]Q1 (QR) or ]E0 (EAN-13)")
	term := fs.String("terminator", "cr", "frame terminator: cr, lf or crlf")
	file := fs.String("file", "", "read the text from this file (- for stdin) instead of the argument")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *device == "" {
		return usagef("--device is required")
	}
	var text string
	switch {
	case *file != "" && fs.NArg() == 0:
		b, err := readInput(e, *file)
		if err != nil {
			return err
		}
		text = strings.TrimSpace(string(b))
	case *file == "" && fs.NArg() == 1:
		text = fs.Arg(0)
	default:
		return usagef("give the text as one argument or with --file")
	}
	if *aim != "" && (len(*aim) != 3 || (*aim)[0] != ']') {
		return usagef("--aim %q: want ] and two characters, for example ]Q1", *aim)
	}
	if err := devices.WriteFrame(*device, text, *aim, *term); err != nil {
		return err
	}
	fmt.Fprintf(e.stdout, "wrote one frame (%d characters) to %s\n", len(text), *device)
	return nil
}

func runScansWatch(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "scans watch", "--lane L [--count N] [--timeout D]",
		"Streams what a lane's scanner reads, as its POS sees it (PaymentService.WatchScans):\nproduct codes in full, payment credentials only as a scan id and a masked fingerprint.")
	addr := addrFlag(fs)
	lane := fs.String("lane", "1", "lane")
	count := fs.Int("count", 0, "exit after this many scans (0: until interrupted)")
	timeout := fs.Duration("timeout", 0, "exit with an error if the scans have not arrived by then (0: no limit)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	conn, err := dial(addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	if *timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, *timeout)
		defer cancel()
	}
	stream, err := storegatev1.NewPaymentServiceClient(conn).WatchScans(ctx, &storegatev1.WatchScansRequest{Lane: *lane})
	if err != nil {
		return addr.callError(ctx, err)
	}
	// The gateway sends headers once it is subscribed: from here on no scan
	// is missed.
	md, err := stream.Header()
	if err != nil {
		return addr.callError(ctx, err)
	}
	if md == nil {
		// Ended before it was subscribed (refused): Recv has the status.
		_, err := stream.Recv()
		if err == nil || errors.Is(err, io.EOF) {
			err = errors.New("the gateway ended the stream before subscribing it")
		}
		return addr.callError(ctx, err)
	}
	fmt.Fprintf(e.stderr, "watching lane %s's scanner\n", *lane)
	for n := 0; *count == 0 || n < *count; n++ {
		res, err := stream.Recv()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if status.Code(err) == codes.DeadlineExceeded {
			return fmt.Errorf("no scan within %s", *timeout)
		}
		if err != nil {
			return rpcError(err)
		}
		printScan(e, res.GetScan())
	}
	return nil
}

func printScan(e *env, s *storegatev1.Scan) {
	kind := strings.ToLower(strings.TrimPrefix(s.GetKind().String(), "SCAN_KIND_"))
	at := s.GetScannedAt().AsTime().Local().Format(time.TimeOnly)
	switch s.GetKind() {
	case storegatev1.ScanKind_SCAN_KIND_PAYMENT_TOKEN, storegatev1.ScanKind_SCAN_KIND_PAYMENT_CODE:
		fmt.Fprintf(e.stdout, "%s %s scan-id %s fingerprint %s symbology %s expires %s\n", at, kind, s.GetScanId(), s.GetFingerprint(),
			s.GetSymbology(), s.GetExpiresAt().AsTime().Local().Format(time.TimeOnly))
	default:
		fmt.Fprintf(e.stdout, "%s %s %s symbology %s\n", at, kind, s.GetCode()+s.GetFingerprint(), s.GetSymbology())
	}
}
