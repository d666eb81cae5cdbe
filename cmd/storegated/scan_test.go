package main_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/creack/pty"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	storegatev1 "storegate/proto/storegate/v1"
)

// The lane's scanner reads the phone over serial, the POS sees only a scan
// id on WatchScans and pays with it: the token never passes through the POS.
func TestStoregated_ScanToAuthorize(t *testing.T) {
	master, slave, err := pty.Open()
	if err != nil {
		t.Skipf("no pseudo-terminals here: %v", err)
	}
	defer master.Close()
	defer slave.Close()
	lanePath := filepath.Join(t.TempDir(), "lane1")
	if err := os.Symlink(slave.Name(), lanePath); err != nil {
		t.Fatal(err)
	}
	w := newWorld(t, "--lane", "1="+lanePath)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()

	waitScannerUp(t, w)
	stream, err := w.payments.WatchScans(ctx, &storegatev1.WatchScansRequest{Lane: "1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := stream.Header(); err != nil {
		t.Fatal(err)
	}
	tok := w.mint(t, w.keys.Token, "acct-0001", time.Now(), time.Minute)
	if _, err := master.Write([]byte("]Q1" + tok + "\r]E04901234567894\r\n")); err != nil {
		t.Fatal(err)
	}
	first, err := stream.Recv()
	if err != nil {
		t.Fatal(err)
	}
	scan := first.GetScan()
	if scan.GetKind() != storegatev1.ScanKind_SCAN_KIND_PAYMENT_TOKEN || scan.GetScanId() == "" || scan.GetCode() != "" || scan.GetSymbology() != "]Q1" {
		t.Fatalf("token scan = %v, want a payment token with a scan id and no code", scan)
	}
	if second, err := stream.Recv(); err != nil || second.GetScan().GetCode() != "4901234567894" || second.GetScan().GetKind() != storegatev1.ScanKind_SCAN_KIND_PRODUCT {
		t.Fatalf("product scan = %v, %v; want EAN 4901234567894 in full", second, err)
	}

	req := sale("1", "scan-1", "")
	req.Credential = &storegatev1.AuthorizeRequest_ScanId{ScanId: scan.GetScanId()}
	res := w.authorize(t, req)
	if res.GetDecision().GetOutcome() != storegatev1.Outcome_OUTCOME_APPROVED {
		t.Fatalf("authorize by scan id = %v, want approved", res.GetDecision())
	}
	t.Run("ErrScanIDSingleUse", func(t *testing.T) {
		req := sale("1", "scan-2", "")
		req.Credential = &storegatev1.AuthorizeRequest_ScanId{ScanId: scan.GetScanId()}
		if _, err := w.payments.Authorize(ctx, req); status.Code(err) != codes.NotFound {
			t.Fatalf("second use of a scan id: %v, want NotFound", err)
		}
	})
	t.Run("ErrUnconfiguredLane", func(t *testing.T) {
		s, err := w.payments.WatchScans(ctx, &storegatev1.WatchScansRequest{Lane: "9"})
		if err == nil {
			_, err = s.Recv()
		}
		if status.Code(err) != codes.NotFound {
			t.Fatalf("watch lane 9: %v, want NotFound", err)
		}
	})
	t.Run("StatusShowsScanner", func(t *testing.T) {
		st, err := w.payments.GetStatus(ctx, &storegatev1.GetStatusRequest{})
		if err != nil {
			t.Fatal(err)
		}
		if len(st.GetScanners()) != 1 || st.GetScanners()[0].GetFrames() != 2 {
			t.Fatalf("scanners = %v, want lane 1 up with 2 frames", st.GetScanners())
		}
	})
}

func waitScannerUp(t *testing.T, w *world) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := w.payments.GetStatus(context.Background(), &storegatev1.GetStatusRequest{})
		if err == nil && len(st.GetScanners()) == 1 && st.GetScanners()[0].GetState() == storegatev1.ScannerState_SCANNER_STATE_UP {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatal("lane 1's scanner did not come up within 10s")
}
