package certs_test

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"storegate/certs"
	"storegate/internal/testca"
)

const chain = "acme.example"

// noChain makes whoAmI ask PeerIdentity with no trust domain.
var noChain bool

func TestParse(t *testing.T) {
	for _, c := range []struct {
		uri  string
		want certs.Identity
	}{
		{"spiffe://acme.example/store/store-0001", certs.Gateway(chain, "store-0001")},
		{"spiffe://acme.example/store/store-0001/lane/12", certs.POS(chain, "store-0001", "12")},
		{"spiffe://acme.example/store/s.1_x/supervisor/Hanako", certs.Supervisor(chain, "s.1_x", "Hanako")},
		{"spiffe://acme.example/operator/taro", certs.Operator(chain, "taro")},
	} {
		t.Run(c.uri, func(t *testing.T) {
			got, err := certs.Parse(c.uri)
			if err != nil || got != c.want {
				t.Fatalf("Parse = %+v, %v; want %+v", got, err, c.want)
			}
			if got.String() != c.uri {
				t.Errorf("String() = %q, want %q", got.String(), c.uri)
			}
			if err := got.Validate(); err != nil {
				t.Errorf("Validate: %v", err)
			}
		})
	}
	long := strings.Repeat("a", certs.MaxSegmentLength+1)
	for _, uri := range []string{
		"",
		"https://acme.example/store/s1",
		"spiffe://acme.example",
		"spiffe://acme.example/",
		"spiffe://acme.example/store",
		"spiffe://acme.example/store/",
		"spiffe://acme.example/store/s1/",
		"spiffe://acme.example/store/s1/lane",
		"spiffe://acme.example/store/s1/lane/",
		"spiffe://acme.example/store/s1/lane/1/extra",
		"spiffe://acme.example/store/s1/cashier/1",
		"spiffe://acme.example/operator",
		"spiffe://acme.example/operator/a/b",
		"spiffe://acme.example/store/../lane/1",
		"spiffe://acme.example/store/./lane/1",
		"spiffe://acme.example/store/s:1",
		"spiffe://acme.example/store/s%31",
		"spiffe://acme.example/store/s1?x=1",
		"spiffe://acme.example/store/s1#x",
		"spiffe://user@acme.example/store/s1",
		"spiffe://acme.example:443/store/s1",
		"spiffe://ACME.example/store/s1",
		"spiffe:///store/s1",
		"spiffe://acme.example//store/s1",
		"spiffe://acme.example/store/" + long,
		"spiffe://" + strings.Repeat("a", certs.MaxChainLength+1) + "/store/s1",
	} {
		t.Run("Err"+uri, func(t *testing.T) {
			got, err := certs.Parse(uri)
			if !errors.Is(err, certs.ErrInvalidIdentity) {
				t.Fatalf("Parse(%q) = %+v, %v; want ErrInvalidIdentity", uri, got, err)
			}
		})
	}
}

func TestIdentity_Validate(t *testing.T) {
	for name, id := range map[string]certs.Identity{
		"GatewayWithLane":     {Chain: chain, Kind: certs.KindGateway, Store: "s1", Lane: "1"},
		"POSWithoutLane":      {Chain: chain, Kind: certs.KindPOS, Store: "s1"},
		"POSWithName":         {Chain: chain, Kind: certs.KindPOS, Store: "s1", Lane: "1", Name: "x"},
		"SupervisorNoName":    {Chain: chain, Kind: certs.KindSupervisor, Store: "s1"},
		"OperatorWithStore":   {Chain: chain, Kind: certs.KindOperator, Store: "s1", Name: "x"},
		"UnknownKind":         {Chain: chain, Kind: "cashier", Store: "s1"},
		"NoChain":             {Kind: certs.KindGateway, Store: "s1"},
		"Zero":                {},
		"StoreWithColon":      {Chain: chain, Kind: certs.KindGateway, Store: "s:1"},
		"OperatorNameDotDot":  {Chain: chain, Kind: certs.KindOperator, Name: ".."},
		"ChainWithUpperCase":  {Chain: "Acme.example", Kind: certs.KindGateway, Store: "s1"},
		"ChainWithPort":       {Chain: "acme.example:1", Kind: certs.KindGateway, Store: "s1"},
		"SupervisorLaneToo":   {Chain: chain, Kind: certs.KindSupervisor, Store: "s1", Lane: "1", Name: "m"},
		"StoreWithSlash":      {Chain: chain, Kind: certs.KindGateway, Store: "s1/lane/1"},
		"OperatorNameIsEmpty": {Chain: chain, Kind: certs.KindOperator},
	} {
		t.Run(name, func(t *testing.T) {
			if err := id.Validate(); !errors.Is(err, certs.ErrInvalidIdentity) {
				t.Fatalf("Validate(%+v) = %v, want ErrInvalidIdentity", id, err)
			}
		})
	}
}

func TestIdentity_FileBase(t *testing.T) {
	for id, want := range map[certs.Identity]string{
		certs.Gateway(chain, "store-0001"):           "gateway-store-0001",
		certs.POS(chain, "store-0001", "2"):          "pos-store-0001-lane-2",
		certs.Supervisor(chain, "store-0001", "mgr"): "supervisor-store-0001-mgr",
		certs.Operator(chain, "ops"):                 "operator-ops",
	} {
		if got := id.FileBase(); got != want {
			t.Errorf("%s: FileBase() = %q, want %q", id, got, want)
		}
	}
}

func TestFromCertificate(t *testing.T) {
	ca := testca.New(t, "test CA")
	leaf := func(uris ...string) *x509.Certificate {
		c, err := x509.ParseCertificate(ca.Client(t, uris...).Certificate[0])
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	t.Run("OK", func(t *testing.T) {
		got, err := certs.FromCertificate(leaf("spiffe://acme.example/store/s1/lane/3"))
		if want := certs.POS(chain, "s1", "3"); err != nil || got != want {
			t.Fatalf("FromCertificate = %+v, %v; want %+v", got, err, want)
		}
	})
	for name, uris := range map[string][]string{
		"ErrNoURISAN":      nil,
		"ErrTwoURISANs":    {"spiffe://acme.example/store/s1/lane/3", "spiffe://acme.example/store/s1/lane/4"},
		"ErrNotSPIFFE":     {"https://acme.example/store/s1"},
		"ErrWrongShape":    {"spiffe://acme.example/lane/3"},
		"ErrEscapedLane":   {"spiffe://acme.example/store/s1/lane/%33"},
		"ErrEmptySegments": {"spiffe://acme.example/store//lane/3"},
	} {
		t.Run(name, func(t *testing.T) {
			if got, err := certs.FromCertificate(leaf(uris...)); !errors.Is(err, certs.ErrInvalidIdentity) {
				t.Fatalf("FromCertificate(%q) = %+v, %v; want ErrInvalidIdentity", uris, got, err)
			}
		})
	}
	if _, err := certs.FromCertificate(nil); !errors.Is(err, certs.ErrNoIdentity) {
		t.Errorf("FromCertificate(nil) = %v, want ErrNoIdentity", err)
	}
}

// whoAmI is a health service whose Check answers with PeerIdentity's
// verdict: SERVING and the identity in a header, or the error as a status.
type whoAmI struct {
	healthpb.UnimplementedHealthServer
	kinds []certs.Kind
}

func (w whoAmI) Check(ctx context.Context, _ *healthpb.HealthCheckRequest) (*healthpb.HealthCheckResponse, error) {
	want := chain
	if noChain {
		want = ""
	}
	id, err := certs.PeerIdentity(ctx, want, w.kinds...)
	switch {
	case errors.Is(err, certs.ErrKindRefused):
		return nil, status.Error(codes.PermissionDenied, err.Error())
	case err != nil:
		return nil, status.Error(codes.Unauthenticated, err.Error())
	}
	return &healthpb.HealthCheckResponse{Status: healthpb.HealthCheckResponse_SERVING}, grpcSetID(ctx, id)
}

func grpcSetID(ctx context.Context, id certs.Identity) error {
	return grpc.SetHeader(ctx, metadata.Pairs("identity", id.String()))
}

// serveWhoAmI serves whoAmI on loopback with mutual TLS, trusting ca for
// clients, and returns its address.
func serveWhoAmI(t *testing.T, ca *testca.CA, kinds ...certs.Kind) string {
	t.Helper()
	cfg := &tls.Config{
		MinVersion: certs.MinVersion, Certificates: []tls.Certificate{ca.Issue(t, x509.ExtKeyUsageServerAuth)},
		ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
	}
	return serveWith(t, grpc.Creds(credentials.NewTLS(cfg)), kinds...)
}

func serveWith(t *testing.T, opt grpc.ServerOption, kinds ...certs.Kind) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := grpc.NewServer(opt)
	healthpb.RegisterHealthServer(s, whoAmI{kinds: kinds})
	go s.Serve(ln)
	t.Cleanup(s.Stop)
	return ln.Addr().String()
}

func askWhoAmI(t *testing.T, addr string, creds credentials.TransportCredentials) (string, error) {
	t.Helper()
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(creds))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var md metadata.MD
	_, err = healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}, grpc.Header(&md))
	if err != nil {
		return "", err
	}
	if v := md["identity"]; len(v) == 1 {
		return v[0], nil
	}
	return "", nil
}

func TestPeerIdentity(t *testing.T) {
	ca := testca.New(t, "test CA")
	addr := serveWhoAmI(t, ca, certs.KindPOS, certs.KindSupervisor)
	client := func(leaf tls.Certificate) credentials.TransportCredentials {
		return credentials.NewTLS(&tls.Config{MinVersion: certs.MinVersion, RootCAs: ca.Pool(), ServerName: "localhost", Certificates: []tls.Certificate{leaf}})
	}
	t.Run("OK", func(t *testing.T) {
		got, err := askWhoAmI(t, addr, client(ca.Issue(t, x509.ExtKeyUsageClientAuth, "spiffe://acme.example/store/s1/lane/2")))
		if want := "spiffe://acme.example/store/s1/lane/2"; err != nil || got != want {
			t.Fatalf("identity = %q, %v; want %q", got, err, want)
		}
	})
	for name, c := range map[string]struct {
		uris []string
		want codes.Code
	}{
		"ErrNoURISAN":       {nil, codes.Unauthenticated},
		"ErrTwoURISANs":     {[]string{"spiffe://acme.example/store/s1/lane/2", "spiffe://acme.example/store/s1/supervisor/m"}, codes.Unauthenticated},
		"ErrForeignChain":   {[]string{"spiffe://other.example/store/s1/lane/2"}, codes.Unauthenticated},
		"ErrWrongShape":     {[]string{"spiffe://acme.example/store/s1/till/2"}, codes.Unauthenticated},
		"ErrGatewayRefused": {[]string{"spiffe://acme.example/store/s1"}, codes.PermissionDenied},
		"ErrOperator":       {[]string{"spiffe://acme.example/operator/ops"}, codes.PermissionDenied},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := askWhoAmI(t, addr, client(ca.Issue(t, x509.ExtKeyUsageClientAuth, c.uris...)))
			if status.Code(err) != c.want {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
	t.Run("ErrNoTLS", func(t *testing.T) {
		plain := serveWith(t, grpc.EmptyServerOption{})
		_, err := askWhoAmI(t, plain, insecure.NewCredentials())
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), certs.ErrNoIdentity.Error()) {
			t.Fatalf("err = %v, want Unauthenticated: %v", err, certs.ErrNoIdentity)
		}
	})
	t.Run("ErrTLSWithoutClientCertificate", func(t *testing.T) {
		cfg := &tls.Config{MinVersion: certs.MinVersion, Certificates: []tls.Certificate{ca.Issue(t, x509.ExtKeyUsageServerAuth)}}
		oneWay := serveWith(t, grpc.Creds(credentials.NewTLS(cfg)))
		_, err := askWhoAmI(t, oneWay, credentials.NewTLS(&tls.Config{MinVersion: certs.MinVersion, RootCAs: ca.Pool(), ServerName: "localhost"}))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), certs.ErrNoIdentity.Error()) {
			t.Fatalf("err = %v, want Unauthenticated: %v", err, certs.ErrNoIdentity)
		}
	})
	t.Run("ErrUnverifiedCertificate", func(t *testing.T) {
		// A server that takes any certificate without verifying it gets
		// no identity from it: only a verified chain names a caller.
		cfg := &tls.Config{
			MinVersion: certs.MinVersion, Certificates: []tls.Certificate{ca.Issue(t, x509.ExtKeyUsageServerAuth)},
			ClientAuth: tls.RequireAnyClientCert,
		}
		lax := serveWith(t, grpc.Creds(credentials.NewTLS(cfg)))
		_, err := askWhoAmI(t, lax, client(testca.New(t, "other CA").Issue(t, x509.ExtKeyUsageClientAuth, "spiffe://acme.example/store/s1/lane/2")))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), certs.ErrNoIdentity.Error()) {
			t.Fatalf("err = %v, want Unauthenticated: %v", err, certs.ErrNoIdentity)
		}
	})
	t.Run("ErrNotAClientCertificate", func(t *testing.T) {
		// "Any" usage passes the handshake's check; an identity needs
		// clientAuth itself.
		_, err := askWhoAmI(t, addr, client(ca.Issue(t, x509.ExtKeyUsageAny, "spiffe://acme.example/store/s1/lane/2")))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "clientAuth") {
			t.Fatalf("err = %v, want Unauthenticated naming clientAuth", err)
		}
	})
	t.Run("ErrNoChainConfigured", func(t *testing.T) {
		// A server whose chain is unset takes no certificate at all.
		addr := serveWith(t, grpc.Creds(credentials.NewTLS(&tls.Config{
			MinVersion: certs.MinVersion, Certificates: []tls.Certificate{ca.Issue(t, x509.ExtKeyUsageServerAuth)},
			ClientCAs: ca.Pool(), ClientAuth: tls.RequireAndVerifyClientCert,
		})), certs.KindPOS)
		noChain = true
		defer func() { noChain = false }()
		_, err := askWhoAmI(t, addr, client(ca.Issue(t, x509.ExtKeyUsageClientAuth, "spiffe://acme.example/store/s1/lane/2")))
		if status.Code(err) != codes.Unauthenticated || !strings.Contains(err.Error(), "no valid trust domain") {
			t.Fatalf("err = %v, want Unauthenticated for want of a trust domain", err)
		}
	})
}
