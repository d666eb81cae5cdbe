package main

import (
	"context"
	"crypto/ed25519"
	"flag"
	"fmt"
	"os"
	"time"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"storegate/gateway"
	storegatev1 "storegate/proto/storegate/v1"
)

// defaultHQAdminAddr is storegate-hq's default admin address.
const defaultHQAdminAddr = "127.0.0.1:7445"

// publishAttempts is how often a command that builds on HQ's latest
// version (a freeze delta, a suspension) tries again when another operator
// published in between.
const publishAttempts = 3

// hqOptions are the flags of every command that signs a document and
// publishes it through HQ.
type hqOptions struct {
	addr    *string
	rootKey *string
	timeout *time.Duration
	out     *string
}

func addHQFlags(fs *flag.FlagSet) *hqOptions {
	return &hqOptions{
		addr:    fs.String("hq", hqAdminAddr(), "storegate-hq admin address (or set STOREGATE_HQ)"),
		rootKey: fs.String("root-key", os.Getenv("STOREGATE_ROOT_KEY"), "HQ root private key that signs (PEM, PKCS#8; or set STOREGATE_ROOT_KEY)"),
		timeout: fs.Duration("timeout", 10*time.Second, "deadline for the whole command"),
		out:     fs.String("out", "", "also write the signed document published here (to push to a store with `document apply`)"),
	}
}

// hqPublisher signs documents with the root key and publishes them through
// HQAdminService.
type hqPublisher struct {
	root ed25519.PrivateKey
	rpc  storegatev1.HQAdminServiceClient
	// published holds HQ's latest documents, by kind and store id.
	published map[docKey]*storegatev1.PublishedDocument
}

type docKey struct {
	kind  storegatev1.DocumentKind
	store string
}

// open reads the root key and connects to HQ. The caller closes the
// connection with the returned function.
func (o *hqOptions) open() (*hqPublisher, func(), error) {
	if *o.rootKey == "" {
		return nil, nil, usagef("--root-key is required (HQ's root.key, which signs)")
	}
	pem, err := os.ReadFile(*o.rootKey)
	if err != nil {
		return nil, nil, err
	}
	root, err := gateway.ParsePrivateKeyPEM(pem)
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", *o.rootKey, err)
	}
	// HQ's admin port is loopback only and serves no TLS.
	conn, err := dial(&target{addr: *o.addr})
	if err != nil {
		return nil, nil, err
	}
	return &hqPublisher{root: root, rpc: storegatev1.NewHQAdminServiceClient(conn)}, func() { conn.Close() }, nil
}

func (p *hqPublisher) rootPublic() ed25519.PublicKey { return p.root.Public().(ed25519.PublicKey) }

// refresh reads HQ's latest documents.
func (p *hqPublisher) refresh(ctx context.Context) error {
	res, err := p.rpc.ListDocuments(ctx, &storegatev1.ListDocumentsRequest{})
	if err != nil {
		return fmt.Errorf("list HQ's documents: %w", rpcError(err))
	}
	p.published = make(map[docKey]*storegatev1.PublishedDocument)
	for _, d := range res.GetDocuments() {
		p.published[docKey{d.GetKind(), d.GetStoreId()}] = d
	}
	return nil
}

// latest returns HQ's latest document of a kind and scope, or nil.
func (p *hqPublisher) latest(kind storegatev1.DocumentKind, store string) *storegatev1.PublishedDocument {
	return p.published[docKey{kind, store}]
}

// keyring returns the keys of HQ's latest keyset, checked against the root
// key, or nil when HQ has published none.
func (p *hqPublisher) keyring() (*gateway.Keyring, error) {
	d := p.latest(storegatev1.DocumentKind_DOCUMENT_KIND_KEYSET, "")
	if d == nil {
		return nil, nil
	}
	ring, err := gateway.OpenKeyset(d.GetDocument().GetCoseSign1(), p.rootPublic())
	if err != nil {
		return nil, fmt.Errorf("HQ's keyset does not verify under this root key: %w", err)
	}
	return ring, nil
}

// publish sends a signed document to HQ.
func (p *hqPublisher) publish(ctx context.Context, kind storegatev1.DocumentKind, raw []byte) (*storegatev1.PublishDocumentResponse, error) {
	return p.rpc.PublishDocument(ctx, &storegatev1.PublishDocumentRequest{Kind: kind, Document: &storegatev1.SignedDocument{CoseSign1: raw}})
}

// publishNext builds a document on HQ's latest ones (build reads them
// through p) and publishes it, building it afresh when another operator
// published first. With out set, the signed document published is also
// written there, for AdminService pushes to a store.
func (p *hqPublisher) publishNext(ctx context.Context, kind storegatev1.DocumentKind, out string, build func() ([]byte, error)) (*storegatev1.PublishDocumentResponse, error) {
	var err error
	for range publishAttempts {
		if err = p.refresh(ctx); err != nil {
			return nil, err
		}
		raw, berr := build()
		if berr != nil {
			return nil, berr
		}
		res, perr := p.publish(ctx, kind, raw)
		if perr == nil {
			return res, writeSigned(out, raw)
		}
		err = perr
		if status.Code(perr) != codes.FailedPrecondition {
			break
		}
	}
	return nil, fmt.Errorf("publish: %w", rpcError(err))
}

// writeSigned writes a signed document to path when path is set.
func writeSigned(path string, raw []byte) error {
	if path == "" {
		return nil
	}
	if err := os.WriteFile(path, raw, 0o644); err != nil {
		return fmt.Errorf("--out: %w", err)
	}
	return nil
}

func runDocumentApply(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "document apply", "--kind policy|freeze|keyset [--admin-socket PATH] SIGNED",
		"Pushes a signed document straight to a running gateway over its admin socket\n"+
			"(AdminService.ApplyPolicy, FreezeAccounts or ApplyKeyset), for a store that cannot\n"+
			"reach HQ's stream: the same document HQ published, as `--out` of the publishing\n"+
			"commands wrote it. The gateway checks it exactly as it checks the stream's: signature,\n"+
			"key, version.")
	socket := adminSocketFlag(fs)
	kind := fs.String("kind", "", "policy, freeze or keyset")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return usagef("want one signed document file")
	}
	raw, err := readInput(e, fs.Arg(0))
	if err != nil {
		return err
	}
	conn, ctx, done, err := connectAdmin(ctx, *socket, callTimeout)
	if err != nil {
		return err
	}
	defer done()
	admin := storegatev1.NewAdminServiceClient(conn)
	doc := &storegatev1.SignedDocument{CoseSign1: raw}
	var applied *storegatev1.AppliedDocument
	switch *kind {
	case "policy":
		res, err := admin.ApplyPolicy(ctx, &storegatev1.ApplyPolicyRequest{Document: doc})
		if err != nil {
			return rpcError(err)
		}
		applied = res.GetApplied()
	case "freeze":
		res, err := admin.FreezeAccounts(ctx, &storegatev1.FreezeAccountsRequest{Document: doc})
		if err != nil {
			return rpcError(err)
		}
		applied = res.GetApplied()
	case "keyset":
		res, err := admin.ApplyKeyset(ctx, &storegatev1.ApplyKeysetRequest{Document: doc})
		if err != nil {
			return rpcError(err)
		}
		applied = res.GetApplied()
	default:
		return usagef("--kind: want policy, freeze or keyset")
	}
	if applied.GetUnchanged() {
		fmt.Fprintf(e.stdout, "%s version %d already held\n", *kind, applied.GetVersion())
	} else {
		fmt.Fprintf(e.stdout, "%s version %d applied\n", *kind, applied.GetVersion())
	}
	return nil
}
