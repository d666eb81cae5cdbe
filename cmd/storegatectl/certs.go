package main

import (
	"context"
	"fmt"
	"strings"

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
	fs := newFlags(e, "certs dev", "--dir DIR [--host NAME]...",
		"Makes a development CA and certificates for mutual TLS in DIR:\n"+
			"  ca.crt, ca.key            the CA (ECDSA P-256); every end trusts ca.crt\n"+
			"  server.crt, server.key    storegated's and storegate-hq's listeners\n"+
			"  pos.crt, pos.key          a lane's POS and storegatectl, as clients of storegated\n"+
			"  gateway.crt, gateway.key  storegated, as a client of the central service\n"+
			"The server certificate is valid for localhost, 127.0.0.1 and ::1, or for the\n"+
			"--host names and addresses given. Private keys are written 0600; existing files\n"+
			"are never overwritten. For development and a lab store: production certificates\n"+
			"come from the chain's own PKI.")
	dir := fs.String("dir", "", "directory for the certificates")
	var hosts hostsFlag
	fs.Var(&hosts, "host", "DNS name or IP address for the server certificate (repeat; default localhost, 127.0.0.1, ::1)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *dir == "" {
		return usagef("--dir is required")
	}
	if fs.NArg() > 0 {
		return usagef("unexpected arguments %q", fs.Args())
	}
	if err := certs.MakeDev(*dir, certs.DevOptions{Hosts: hosts}); err != nil {
		return err
	}
	if len(hosts) == 0 {
		hosts = certs.DefaultDevHosts
	}
	fmt.Fprintf(e.stdout, "development CA and certificates in %s (server certificate for %s)\n", *dir, strings.Join(hosts, ", "))
	return nil
}
