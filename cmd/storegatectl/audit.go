package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
	"storegate/storecache"
)

// auditSource reads the audit log from a store file (the daemon stopped, or a
// copy) or from a running gateway's admin socket, calling fn with each
// stored record.
type auditSource struct {
	db     string
	socket *string
}

func (a auditSource) scan(ctx context.Context, fn func(raw []byte) error) (headCheck func(*gateway.AuditChain) error, err error) {
	if a.db != "" {
		st := storecache.NewStore(a.db)
		st.ReadOnly, st.Timeout = true, 2*time.Second
		if err := st.Open(ctx); err != nil {
			return nil, err
		}
		defer st.Close(context.Background())
		if err := st.ScanAudit(ctx, 1, func(_ uint64, raw []byte) error { return fn(raw) }); err != nil {
			return nil, err
		}
		n, head, err := st.AuditHead(ctx)
		if err != nil {
			return nil, err
		}
		return func(c *gateway.AuditChain) error { return c.CheckHead(n, head) }, nil
	}
	conn, err := dialAdmin(*a.socket)
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	stream, err := storegatev1.NewAdminServiceClient(conn).ExportAudit(ctx, &storegatev1.ExportAuditRequest{FromSeq: 1})
	if err != nil {
		return nil, rpcError(err)
	}
	for {
		res, err := stream.Recv()
		if err == io.EOF {
			// A running gateway keeps appending, so its head is a moving
			// target: the chain itself is what is checked.
			return func(*gateway.AuditChain) error { return nil }, nil
		}
		if err != nil {
			return nil, rpcError(err)
		}
		if err := fn(res.GetRecord().GetRecord()); err != nil {
			return nil, err
		}
	}
}

func auditFlags(e *env, name, synopsis, help string) (*auditSource, *flagSetWithParse) {
	fs := newFlags(e, name, synopsis, help)
	src := &auditSource{}
	fs.StringVar(&src.db, "db", "", "store file to read (storegated stopped, or a copy)")
	src.socket = adminSocketFlag(fs)
	return src, &flagSetWithParse{fs: fs}
}

func runAuditVerify(ctx context.Context, e *env, args []string) error {
	src, fs := auditFlags(e, "audit verify", "(--db FILE | --admin-socket PATH)",
		"Checks the audit log's hash chain: every record's sequence number and the SHA-256\nof the record before it, and, from a store file, the head the store recorded.\nExits 1 at the first broken link.")
	if err := fs.parse(args); err != nil {
		return err
	}
	var chain gateway.AuditChain
	checkHead, err := src.scan(ctx, func(raw []byte) error {
		_, err := chain.Add(raw)
		return err
	})
	if err != nil {
		return fmt.Errorf("audit log BROKEN: %w", err)
	}
	if err := checkHead(&chain); err != nil {
		return fmt.Errorf("audit log BROKEN: %w", err)
	}
	n, head := chain.Head()
	fmt.Fprintf(e.stdout, "audit log OK: %d records, chain head %x\n", n, head)
	return nil
}

func runAuditExport(ctx context.Context, e *env, args []string) error {
	src, fs := auditFlags(e, "audit export", "(--db FILE | --admin-socket PATH) [--out FILE]",
		"Writes the audit log as JSON lines, each record exactly as stored and hashed, so an\ninvestigator can re-check the chain with any tool. The chain is verified while writing;\na broken chain still writes what was read and exits 1.")
	out := fs.fs.String("out", "-", "output file (- for standard output)")
	if err := fs.parse(args); err != nil {
		return err
	}
	w := e.stdout
	if *out != "-" {
		f, err := os.Create(*out)
		if err != nil {
			return err
		}
		defer f.Close()
		w = f
	}
	bw := bufio.NewWriter(w)
	var chain gateway.AuditChain
	var broken error
	checkHead, err := src.scan(ctx, func(raw []byte) error {
		if _, err := chain.Add(raw); err != nil && broken == nil {
			broken = err
		}
		bw.Write(raw)
		return bw.WriteByte('\n')
	})
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	if err != nil {
		return err
	}
	if broken == nil {
		broken = checkHead(&chain)
	}
	n, _ := chain.Head()
	if broken != nil {
		return fmt.Errorf("exported, but the audit log is BROKEN: %w", broken)
	}
	if *out != "-" {
		fmt.Fprintf(e.stderr, "exported %d records to %s; chain OK\n", n, *out)
	}
	return nil
}
