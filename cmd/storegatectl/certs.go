package main

import (
	"context"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"path/filepath"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"storegate/certs"
)

// hostsFlag collects repeated --host flags.
type hostsFlag []string

func (h *hostsFlag) String() string { return strings.Join(*h, ",") }

func (h *hostsFlag) Set(v string) error {
	if v == "" {
		return fmt.Errorf("empty host")
	}
	*h = append(*h, v)
	return nil
}

func runCertsDev(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "certs dev", "--dir DIR [--chain C] [--store S] [--host NAME]... | --dir DIR [--store S] (--lane N | --supervisor NAME | --gateway) | --dir DIR --operator NAME",
		"Makes development certificates for mutual TLS. Each client certificate names its holder\n"+
			"in one URI SAN, a SPIFFE ID (spiffe://CHAIN/store/S/lane/N and so on; see README.md,\n"+
			"\"Who may call what\"), and each kind has its own issuing CA, so that a server trusts\n"+
			"only the holders it serves.\n\n"+
			"Without a kind flag, makes the CAs and a default set in DIR:\n"+
			"  server-ca.crt    signs server certificates: every client trusts it for servers\n"+
			"  pos-ca.crt       signs POS and supervisor certificates: storegated's tls.client_ca_file\n"+
			"  gateway-ca.crt   signs gateway certificates: storegate-hq's --tls-client-ca\n"+
			"  operator-ca.crt  signs operator certificates: HQ's admin listener\n"+
			"  (each with its .key, which only this command needs)\n"+
			"  server.crt                          storegated's and storegate-hq's listeners (--host names)\n"+
			"  gateway-S.crt                       storegated of store S, as a client of HQ\n"+
			"  pos-S-lane-1.crt, pos-S-lane-2.crt  the POS terminals of lanes 1 and 2 of store S\n"+
			"  supervisor-S-manager.crt            a supervisor of store S (any lane, reversals)\n"+
			"  operator-ops.crt                    an HQ operator\n"+
			"With --lane, --supervisor, --gateway or --operator, issues that one certificate more\n"+
			"from the CAs already in DIR. Private keys are written 0600; existing files are never\n"+
			"overwritten. For development and a lab store: production certificates come from the\n"+
			"chain's own PKI.")
	dir := fs.String("dir", "", "directory for the certificates")
	var hosts hostsFlag
	fs.Var(&hosts, "host", "DNS name or IP address for the server certificate (repeat; default localhost, 127.0.0.1, ::1)")
	chain := fs.String("chain", certs.DevChain, "the chain's trust domain, the host of every SPIFFE ID")
	store := fs.String("store", certs.DefaultDevStore, "the store a gateway, POS or supervisor certificate names")
	lane := fs.String("lane", "", "issue a POS certificate for this lane of --store")
	supervisor := fs.String("supervisor", "", "issue a certificate for this supervisor of --store")
	gateway := fs.Bool("gateway", false, "issue a gateway certificate for --store")
	operator := fs.String("operator", "", "issue a certificate for this HQ operator")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--dir is required")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	var ids []certs.Identity
	if *lane != "" {
		ids = append(ids, certs.POS(*chain, *store, *lane))
	}
	if *supervisor != "" {
		ids = append(ids, certs.Supervisor(*chain, *store, *supervisor))
	}
	if *gateway {
		ids = append(ids, certs.Gateway(*chain, *store))
	}
	if *operator != "" {
		ids = append(ids, certs.Operator(*chain, *operator))
	}
	switch {
	case len(ids) > 1:
		return usagef("give one of --lane, --supervisor, --gateway and --operator")
	case len(ids) == 1 && len(hosts) > 0:
		return usagef("--host is for the server certificate of the default set, not with --lane, --supervisor, --gateway or --operator")
	case len(ids) == 1:
		if err := ids[0].Validate(); err != nil {
			return usagef("%v", err)
		}
		certPath, keyPath, err := certs.IssueDev(*dir, ids[0], certs.DevOptions{})
		if err != nil {
			return err
		}
		fmt.Fprintf(e.stdout, "%s\n  %s\n  %s (signed by %s)\n", ids[0], keyPath, certPath, certs.IssuerOf(ids[0].Kind).CertFile())
		return nil
	}
	opts := certs.DevOptions{Hosts: hosts, Chain: *chain, Store: *store}
	written, err := certs.MakeDev(*dir, opts)
	if err != nil {
		return err
	}
	if len(hosts) == 0 {
		hosts = certs.DefaultDevHosts
	}
	fmt.Fprintf(e.stdout, "development CAs and certificates in %s (server certificate for %s):\n", *dir, strings.Join(hosts, ", "))
	names := map[string]certs.Identity{}
	for _, id := range certs.DevSet(opts) {
		cert, _ := certs.CertFiles(id)
		names[cert] = id
	}
	for _, p := range written {
		if id, ok := names[filepath.Base(p)]; ok {
			fmt.Fprintf(e.stdout, "  %s  %s\n", p, id)
		} else {
			fmt.Fprintf(e.stdout, "  %s\n", p)
		}
	}
	return nil
}

// defaultCertDays is how soon an expiry makes storegatectl certs fail: the
// threshold of the StoregateCertificateExpiring warning.
const defaultCertDays = 14

func runCerts(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "certs", "[--dir DIR] [--days N] [FILE...]",
		"Lists the certificates in the files given, or in every *.crt and *.pem of --dir: each one's\n"+
			"subject (its SPIFFE ID, or its name and hosts), issuer, expiry and the days left. Exits 1\n"+
			"when any expires within --days days, or has expired.")
	dir := fs.String("dir", "", "a folder of certificates (every *.crt and *.pem in it)")
	days := fs.Int("days", defaultCertDays, "fail when a certificate expires within this many days")
	if err := fs.Parse(args); err != nil {
		return err
	}
	files := fs.Args()
	if *dir != "" {
		for _, pattern := range []string{"*.crt", "*.pem"} {
			m, err := filepath.Glob(filepath.Join(*dir, pattern))
			if err != nil {
				return err
			}
			files = append(files, m...)
		}
		sort.Strings(files)
	}
	if len(files) == 0 {
		return usagef("give certificate files, or --dir")
	}
	if *days < 0 {
		return usagef("--days must not be negative")
	}
	now := time.Now()
	deadline := now.Add(time.Duration(*days) * 24 * time.Hour)
	tw := tabwriter.NewWriter(e.stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "FILE\tSUBJECT\tISSUER\tEXPIRES\tDAYS LEFT")
	soon, failed := 0, 0
	for _, f := range files {
		cs, err := certs.ReadCertificates(f)
		if err != nil {
			fmt.Fprintf(e.stderr, "storegatectl certs: %v\n", err)
			failed++
			continue
		}
		for _, c := range cs {
			left := daysLeft(c.NotAfter, now)
			if c.NotAfter.Before(deadline) {
				soon++
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", f, subjectOf(c), nameOf(c.Issuer), c.NotAfter.UTC().Format("2006-01-02 15:04 MST"), left)
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	switch {
	case failed > 0:
		return fmt.Errorf("%d of %d files could not be read", failed, len(files))
	case soon > 0:
		return fmt.Errorf("%d certificate(s) expire within %d days, or have expired: renew them", soon, *days)
	}
	return nil
}

// daysLeft says how long until t, in whole days.
func daysLeft(t, now time.Time) string {
	d := int(t.Sub(now).Hours() / 24)
	if !t.After(now) {
		return fmt.Sprintf("expired %d days ago", int(now.Sub(t).Hours()/24))
	}
	return fmt.Sprint(d)
}

// subjectOf names what a certificate is for: its SPIFFE IDs (URI SANs), or
// its common name and the hosts it serves.
func subjectOf(c *x509.Certificate) string {
	if len(c.URIs) > 0 {
		uris := make([]string, len(c.URIs))
		for i, u := range c.URIs {
			uris[i] = u.String()
		}
		return strings.Join(uris, ", ")
	}
	s := nameOf(c.Subject)
	hosts := append([]string(nil), c.DNSNames...)
	for _, ip := range c.IPAddresses {
		hosts = append(hosts, ip.String())
	}
	if len(hosts) > 0 {
		s += " (" + strings.Join(hosts, ", ") + ")"
	}
	if c.IsCA {
		s += " [CA]"
	}
	return s
}

// nameOf is a name's common name, or the whole name when it has none.
func nameOf(n pkix.Name) string {
	if n.CommonName != "" {
		return n.CommonName
	}
	return n.String()
}
