package certs

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"strings"
)

// Kind is what holds a certificate: a store's gateway, a lane's POS
// terminal, a store supervisor or an HQ operator.
type Kind string

// The kinds of identity, each with its own SPIFFE ID path (DESIGN.md, "Who
// may call what").
const (
	// KindGateway is a store's gateway, as a client of HQ:
	// spiffe://<chain>/store/<store>.
	KindGateway Kind = "gateway"
	// KindPOS is a lane's POS terminal, as a client of its store's
	// gateway: spiffe://<chain>/store/<store>/lane/<lane>.
	KindPOS Kind = "pos"
	// KindSupervisor is a person who may act on any lane of one store
	// (reversals above all): spiffe://<chain>/store/<store>/supervisor/<name>.
	KindSupervisor Kind = "supervisor"
	// KindOperator is a person at HQ: spiffe://<chain>/operator/<name>.
	KindOperator Kind = "operator"
)

// Kinds lists every kind, in the order the documentation names them.
var Kinds = []Kind{KindGateway, KindPOS, KindSupervisor, KindOperator}

// DevChain is the trust domain of the development certificates: ".invalid"
// (RFC 2606) so that no real chain's name can ever be it.
const DevChain = "dev.storegate.invalid"

// Limits of an identity's parts.
const (
	// MaxChainLength bounds a trust domain, as SPIFFE does.
	MaxChainLength = 255
	// MaxSegmentLength bounds a store id, lane or name, as the gateway's
	// id rule does (gateway.MaxIDLength).
	MaxSegmentLength = 64
)

var (
	// chainPattern is a SPIFFE trust domain: lowercase letters, digits,
	// dots, dashes and underscores.
	chainPattern = regexp.MustCompile(`^[a-z0-9._-]+$`)
	// segmentPattern is what a store id, lane or name may hold in an
	// identity: the gateway's id rule ([A-Za-z0-9._:-]{1,64}) less the
	// colon, which a SPIFFE ID path segment may not carry.
	segmentPattern = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// Errors a server branches on. Every error FromCertificate, Parse and
// PeerIdentity return wraps one of them.
var (
	// ErrNoIdentity: the peer presented no verified certificate (plaintext,
	// or TLS without client certificates).
	ErrNoIdentity = errors.New("no verified client certificate")
	// ErrInvalidIdentity: the certificate does not name exactly one
	// storegate identity of the expected trust domain: no URI SAN,
	// several, one that is not a SPIFFE ID of a known shape, or another
	// chain's. The server must treat the caller as unauthenticated.
	ErrInvalidIdentity = errors.New("invalid identity")
	// ErrKindRefused: the identity is well formed but of a kind the server
	// does not take from this listener (a POS certificate at HQ, a
	// gateway's at a POS listener). The caller is known, and refused.
	ErrKindRefused = errors.New("identity of a kind this server does not take")
)

// Identity is who holds a certificate: its kind, the chain (SPIFFE trust
// domain) it belongs to, and the store, lane or name its kind carries. The
// zero value is no identity. An Identity that Parse, FromCertificate or
// PeerIdentity returned is valid (Validate returns nil).
type Identity struct {
	// Chain is the trust domain, the host of the SPIFFE ID.
	Chain string
	Kind  Kind
	// Store is the store id of a gateway, a POS terminal or a supervisor;
	// empty for an operator.
	Store string
	// Lane is a POS terminal's lane; empty for every other kind.
	Lane string
	// Name is a supervisor's or an operator's name; empty for the others.
	Name string
}

// Gateway returns the identity of store's gateway.
func Gateway(chain, store string) Identity {
	return Identity{Chain: chain, Kind: KindGateway, Store: store}
}

// POS returns the identity of the POS terminal of lane at store.
func POS(chain, store, lane string) Identity {
	return Identity{Chain: chain, Kind: KindPOS, Store: store, Lane: lane}
}

// Supervisor returns the identity of supervisor name of store.
func Supervisor(chain, store, name string) Identity {
	return Identity{Chain: chain, Kind: KindSupervisor, Store: store, Name: name}
}

// Operator returns the identity of HQ operator name.
func Operator(chain, name string) Identity {
	return Identity{Chain: chain, Kind: KindOperator, Name: name}
}

// ValidChain reports whether chain may serve as a trust domain: 1 to 255
// characters of lowercase letters, digits, '.', '-' and '_'.
func ValidChain(chain string) bool {
	return len(chain) <= MaxChainLength && chainPattern.MatchString(chain)
}

// ValidSegment reports whether s may be a store id, lane or name in an
// identity: 1 to 64 characters of [A-Za-z0-9._-], and not "." or "..".
func ValidSegment(s string) bool {
	return segmentPattern.MatchString(s) && s != "." && s != ".."
}

// Validate checks that id's chain and the parts its kind carries are well
// formed and that it carries no other part. Errors wrap ErrInvalidIdentity.
func (id Identity) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidIdentity, fmt.Sprintf(format, args...))
	}
	if !ValidChain(id.Chain) {
		return bad("trust domain %q: want 1-%d characters of [a-z0-9._-]", clip(id.Chain), MaxChainLength)
	}
	seg := func(what, v string) error {
		if !ValidSegment(v) {
			return bad("%s %q: want 1-%d characters of [A-Za-z0-9._-]", what, clip(v), MaxSegmentLength)
		}
		return nil
	}
	none := func(what, v string) error {
		if v != "" {
			return bad("a %s identity has no %s", id.Kind, what)
		}
		return nil
	}
	switch id.Kind {
	case KindGateway:
		return errors.Join(seg("store", id.Store), none("lane", id.Lane), none("name", id.Name))
	case KindPOS:
		return errors.Join(seg("store", id.Store), seg("lane", id.Lane), none("name", id.Name))
	case KindSupervisor:
		return errors.Join(seg("store", id.Store), none("lane", id.Lane), seg("name", id.Name))
	case KindOperator:
		return errors.Join(none("store", id.Store), none("lane", id.Lane), seg("name", id.Name))
	}
	return bad("unknown kind %q", clip(string(id.Kind)))
}

// path returns the SPIFFE ID's path for id's kind.
func (id Identity) path() string {
	switch id.Kind {
	case KindGateway:
		return "/store/" + id.Store
	case KindPOS:
		return "/store/" + id.Store + "/lane/" + id.Lane
	case KindSupervisor:
		return "/store/" + id.Store + "/supervisor/" + id.Name
	case KindOperator:
		return "/operator/" + id.Name
	}
	return ""
}

// URL returns id as a SPIFFE ID URL, the form a certificate's URI SAN takes.
func (id Identity) URL() *url.URL {
	return &url.URL{Scheme: "spiffe", Host: id.Chain, Path: id.path()}
}

// String returns id's SPIFFE ID, for example
// "spiffe://dev.storegate.invalid/store/store-0001/lane/1"; "" for the zero
// Identity. It is what logs and audit records name a caller by.
func (id Identity) String() string {
	if id == (Identity{}) {
		return ""
	}
	return id.URL().String()
}

// FileBase returns the name development certificate files of id take,
// without extension: "gateway-<store>", "pos-<store>-lane-<lane>",
// "supervisor-<store>-<name>" or "operator-<name>".
func (id Identity) FileBase() string {
	switch id.Kind {
	case KindGateway:
		return "gateway-" + id.Store
	case KindPOS:
		return "pos-" + id.Store + "-lane-" + id.Lane
	case KindSupervisor:
		return "supervisor-" + id.Store + "-" + id.Name
	case KindOperator:
		return "operator-" + id.Name
	}
	return ""
}

// Parse reads a SPIFFE ID of one of storegate's shapes. Anything else, a
// SPIFFE ID with a query, a fragment, a port, user information, percent
// escapes, empty or dot segments, or a path of another shape, is an error
// wrapping ErrInvalidIdentity. Parse does not check the trust domain
// against any chain: PeerIdentity does.
func Parse(uri string) (Identity, error) {
	bad := func(why string) (Identity, error) {
		return Identity{}, fmt.Errorf("%w: %q: %s", ErrInvalidIdentity, clip(uri), why)
	}
	rest, ok := strings.CutPrefix(uri, "spiffe://")
	if !ok {
		return bad("not a spiffe:// URI")
	}
	if strings.ContainsAny(rest, "?#%@") {
		return bad("a SPIFFE ID has no query, fragment, escapes or user information")
	}
	chain, path, _ := strings.Cut(rest, "/")
	parts := strings.Split(path, "/")
	var id Identity
	switch {
	case len(parts) == 2 && parts[0] == "store":
		id = Gateway(chain, parts[1])
	case len(parts) == 4 && parts[0] == "store" && parts[2] == "lane":
		id = POS(chain, parts[1], parts[3])
	case len(parts) == 4 && parts[0] == "store" && parts[2] == "supervisor":
		id = Supervisor(chain, parts[1], parts[3])
	case len(parts) == 2 && parts[0] == "operator":
		id = Operator(chain, parts[1])
	default:
		return bad("want /store/S, /store/S/lane/L, /store/S/supervisor/N or /operator/N")
	}
	if err := id.Validate(); err != nil {
		return Identity{}, err
	}
	return id, nil
}

// FromCertificate returns the identity c names: c must carry exactly one
// URI SAN, a SPIFFE ID Parse accepts (as an X.509-SVID does). It checks
// nothing else: the caller has verified c's chain and key usage, and checks
// the trust domain and kind it expects (PeerIdentity does both).
func FromCertificate(c *x509.Certificate) (Identity, error) {
	if c == nil {
		return Identity{}, ErrNoIdentity
	}
	switch n := len(c.URIs); {
	case n == 0:
		return Identity{}, fmt.Errorf("%w: the certificate carries no URI SAN", ErrInvalidIdentity)
	case n > 1:
		return Identity{}, fmt.Errorf("%w: the certificate carries %d URI SANs, want exactly one", ErrInvalidIdentity, n)
	}
	return Parse(c.URIs[0].String())
}

// clip bounds how much of a peer's text an error repeats.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
