package main_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"storegate/certs"
	"storegate/hqkeys"
)

// A refused TLS handshake names the certificate problem: storegatectl
// says what is wrong and which flag fixes it (over TLS 1.3 gRPC alone
// reports a refused client certificate as a failed write, "broken pipe"),
// and the refusing server's log says it too, with what the certificate
// claimed to be.
func TestStoregated_TLSRefusalsNamed(t *testing.T) {
	pki := devPKI(t)
	f := func(name string) string { return pkiFile(pki, name) }
	keysDir := t.TempDir()
	if _, err := hqkeys.Init(keysDir); err != nil {
		t.Fatal(err)
	}
	hq := startDaemon(t, "storegate-hq", append([]string{"--listen", "127.0.0.1:0", "--admin-listen", "127.0.0.1:0", "--data", t.TempDir(), "--keys", keysDir},
		hqTLSArgs(pki)...)...)
	gwArgs := func(extra ...string) []string {
		return append(append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "off", "--data", t.TempDir(), "--store-id", certs.DefaultDevStore,
			"--central", hq.addr, "--root-key", pkiFile(keysDir, "root.pub"), "--keyset", pkiFile(keysDir, "keyset.cose")},
			gatewayTLSArgs(pki, len(extra) == 0)...), extra...)
	}
	gw := startDaemon(t, "storegated", gwArgs()...)

	lane1Cert, lane1Key := clientFiles(pki, certs.POS(certs.DevChain, certs.DefaultDevStore, "1"))
	gwCert, gwKey := clientFiles(pki, certs.Gateway(certs.DevChain, certs.DefaultDevStore))
	// A lane-9 certificate from the right CA, expired a year ago.
	expCert, expKey, err := certs.IssueDev(pki, certs.POS(certs.DevChain, certs.DefaultDevStore, "9"),
		certs.DevOptions{Now: time.Now().Add(-certs.DevLeafValidity - 365*24*time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	port := gw.addr[strings.LastIndex(gw.addr, ":"):]
	for _, tt := range []struct {
		name    string
		args    []string
		want    []string
		wantLog string
	}{
		{"NoClientCertificate", []string{"--tls-ca", f(certs.CAServer.CertFile())},
			[]string{"the gateway requires a client certificate and none was presented", "--tls-cert and --tls-key"},
			"TLS handshake refused: the client presented no certificate"},
		{"ClientCertificateFromAnotherCA", []string{"--tls-ca", f(certs.CAServer.CertFile()), "--tls-cert", gwCert, "--tls-key", gwKey},
			[]string{"the gateway does not trust the CA that signed the client certificate", "pos-ca.crt"},
			`the client's certificate is not signed by a CA this server trusts (issued by \"storegate dev gateway CA\")","part":"tls","remote":"127.0.0.1:`},
		{"ClientCertificateExpired", []string{"--tls-ca", f(certs.CAServer.CertFile()), "--tls-cert", expCert, "--tls-key", expKey},
			[]string{"the gateway refused the client certificate as expired", "renew --tls-cert"},
			"TLS handshake refused: the client's certificate expired "},
		{"ServerCertificateFromUntrustedCA", []string{"--tls-ca", f(certs.CAPOS.CertFile()), "--tls-cert", lane1Cert, "--tls-key", lane1Key},
			[]string{"the gateway's certificate is not signed by a CA this client trusts", "--tls-ca"},
			"TLS handshake refused: the client refused the server certificate"},
		{"ServerCertificateForOtherNames", []string{"--addr", "localhost" + port, "--tls-server-name", "register-9",
			"--tls-ca", f(certs.CAServer.CertFile()), "--tls-cert", lane1Cert, "--tls-key", lane1Key},
			[]string{`the gateway's certificate is for localhost, 127.0.0.1, ::1, not "register-9"`, "--tls-server-name"},
			"TLS handshake refused: the client refused the server certificate"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// The same answer every time, whatever gRPC's write met.
			for range 3 {
				out, code := ctl(t, append([]string{"status", "--addr", gw.addr}, tt.args...)...)
				for _, want := range tt.want {
					if code != 1 || !strings.Contains(out, want) {
						t.Fatalf("storegatectl status (exit %d), want 1 and %q:\n%s", code, want, out)
					}
				}
			}
			if !strings.Contains(gw.log.String(), tt.wantLog) {
				t.Errorf("the gateway's log lacks %q:\n%s", tt.wantLog, gw.log)
			}
		})
	}
	t.Run("HQLogsTheGatewaysCertificate", func(t *testing.T) {
		// A gateway presenting a POS certificate toward HQ: HQ's log names
		// the problem and what the certificate claimed.
		bad := startDaemon(t, "storegated", gwArgs("--central-tls-cert", lane1Cert, "--central-tls-key", lane1Key)...)
		want := `not signed by a CA this server trusts (issued by \"storegate dev pos CA\")","part":"tls","remote":"127.0.0.1:`
		deadline := time.Now().Add(10 * time.Second)
		for !strings.Contains(hq.log.String(), want) {
			if time.Now().After(deadline) {
				t.Fatalf("HQ's log lacks %q:\n%s", want, hq.log)
			}
			time.Sleep(20 * time.Millisecond)
		}
		if !strings.Contains(hq.log.String(), `"claimed":"spiffe://dev.storegate.invalid/store/store-0001/lane/1"`) {
			t.Errorf("HQ's log does not say what the certificate claimed:\n%s", hq.log)
		}
		bad.stop()
	})
	gw.stop()
	hq.stop()
}

// The README's health check runs as written, with go tool grpcurl (pinned
// in go.mod): only the certificate folder and the address are this test's.
func TestStoregated_READMEHealthCheck(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	readme, err := os.ReadFile(filepath.Join(root, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	var command string
	for _, line := range strings.Split(string(readme), "\n") {
		if line = strings.TrimSpace(line); strings.HasPrefix(line, "go tool grpcurl ") && strings.HasSuffix(line, " grpc.health.v1.Health/Check") {
			command = line
		}
	}
	const readmeDir, readmeAddr = "/etc/storegate/tls/", "register-1.store.lan:7443"
	if command == "" || !strings.Contains(command, readmeDir) || !strings.Contains(command, readmeAddr) {
		t.Fatalf("README.md has no health check `go tool grpcurl … %s … %s grpc.health.v1.Health/Check`", readmeDir, readmeAddr)
	}
	pki := devPKI(t)
	keysDir := t.TempDir()
	if _, err := hqkeys.Init(keysDir); err != nil {
		t.Fatal(err)
	}
	gw := startDaemon(t, "storegated", append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "off", "--data", t.TempDir(), "--store-id", certs.DefaultDevStore,
		"--central", "127.0.0.1:1", "--root-key", pkiFile(keysDir, "root.pub")}, gatewayTLSArgs(pki, false)...)...)
	command = strings.ReplaceAll(command, readmeDir, pki+"/")
	command = strings.ReplaceAll(command, readmeAddr, gw.addr)
	args := strings.Fields(command)
	cmd := exec.Command(args[0], args[1:]...)
	cmd.Dir = root
	out, err := cmd.CombinedOutput()
	if err != nil || !strings.Contains(string(out), `"status": "SERVING"`) {
		t.Fatalf("%s: %v\n%s", command, err, out)
	}
	gw.stop()
}

// Prometheus sees when each certificate storegated read expires, by role
// and file: never a subject.
func TestStoregated_CertificateMetrics(t *testing.T) {
	pki := devPKI(t)
	keysDir := t.TempDir()
	if _, err := hqkeys.Init(keysDir); err != nil {
		t.Fatal(err)
	}
	metricsFile := filepath.Join(t.TempDir(), "metrics-addr")
	gw := startDaemon(t, "storegated", append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--metrics-addr-file", metricsFile,
		"--data", t.TempDir(), "--store-id", certs.DefaultDevStore, "--central", "127.0.0.1:1", "--root-key", pkiFile(keysDir, "root.pub")},
		gatewayTLSArgs(pki, true)...)...)
	addr, err := os.ReadFile(metricsFile)
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get("http://" + strings.TrimSpace(string(addr)) + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	gwCert, _ := clientFiles(pki, certs.Gateway(certs.DevChain, certs.DefaultDevStore))
	for role, file := range map[string]string{
		"listener":           pkiFile(pki, certs.ServerCertFile),
		"listener_client_ca": pkiFile(pki, certs.CAPOS.CertFile()),
		"central_client":     gwCert,
		"central_ca":         pkiFile(pki, certs.CAServer.CertFile()),
	} {
		cs, err := certs.ReadCertificates(file)
		if err != nil {
			t.Fatal(err)
		}
		want := fmt.Sprintf(`storegate_certificate_expiry_timestamp_seconds{file=%q,role=%q} %s`, file, role,
			strconv.FormatFloat(float64(cs[0].NotAfter.Unix()), 'e', -1, 64))
		if !slices.Contains(strings.Split(string(b), "\n"), want) {
			t.Errorf("no %s in the scrape:\n%s", want, grepLines(string(b), "certificate"))
		}
	}
	if lines := grepLines(string(b), "storegate_certificate"); strings.Contains(lines, "spiffe://") || strings.Contains(lines, "storegate dev") {
		t.Errorf("a certificate's subject in a label:\n%s", lines)
	}
	gw.stop()
}

// grepLines returns the lines of text that contain s.
func grepLines(text, s string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, s) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}
