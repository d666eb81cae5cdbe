package metrics_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"

	"storegate/metrics"
)

// Open serves /metrics on a loopback port 0 and nothing else; Close stops
// it.
func TestMetrics_Open(t *testing.T) {
	m := metrics.NewMetrics("v1.2.3")
	if err := m.Open(); err == nil {
		t.Fatal("Open without a Listener: nil error, want one")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	m.Listener = ln
	if err := m.Open(); err != nil {
		t.Fatal(err)
	}
	base := "http://" + ln.Addr().String()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	get := func(path string) (int, string, error) {
		res, err := client.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		return res.StatusCode, string(b), err
	}
	code, body, err := get(metrics.Path)
	if err != nil || code != http.StatusOK {
		t.Fatalf("GET %s: %d, %v; want 200", metrics.Path, code, err)
	}
	wantLine(t, body, `storegate_build_info{version="v1.2.3"} 1`)
	if code, _, err := get("/"); err != nil || code != http.StatusNotFound {
		t.Fatalf("GET /: %d, %v; want 404", code, err)
	}
	if err := m.Open(); err == nil {
		t.Fatal("second Open: nil error, want one")
	}
	if err := m.Close(context.Background()); err != nil {
		t.Fatalf("Close = %v", err)
	}
	if _, _, err := get(metrics.Path); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("GET after Close: %v, want the connection refused", err)
	}
}
