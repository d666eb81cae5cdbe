// Package certs holds storegate's TLS material and the identities it
// carries: it loads the certificates and keys of the mutual-TLS links (a
// lane's POS to the gateway, the gateway to the central service, an operator
// to HQ) into crypto/tls configurations, it reads who a caller is from the
// certificate its handshake verified, and it makes development CAs and
// certificates for tests, the demo and a lab store.
//
// # Identities
//
// Every client certificate names its holder in exactly one URI SAN, a
// SPIFFE ID as an X.509-SVID carries it (DESIGN.md, "Who may call what"):
//
//	gateway     spiffe://<chain>/store/<store>
//	POS         spiffe://<chain>/store/<store>/lane/<lane>
//	supervisor  spiffe://<chain>/store/<store>/supervisor/<name>
//	operator    spiffe://<chain>/operator/<name>
//
// <chain> is the chain's trust domain (DevChain for development). Identity
// is such a holder (identity.go): Parse reads one from its URI, String
// writes it, FromCertificate reads it from a certificate, and PeerIdentity
// (peer.go) from the verified peer of a gRPC call, checking its trust domain
// and its kind. A server takes a caller's identity from PeerIdentity alone,
// never from what a request says; errors wrap ErrNoIdentity or
// ErrInvalidIdentity (answer Unauthenticated) or ErrKindRefused (answer
// PermissionDenied).
//
// # Development CAs
//
// MakeDev (dev.go) makes one issuing CA per kind of certificate, so that a
// server trusts only the holders it serves: CAServer for servers, CAPOS for
// POS terminals and supervisors, CAGateway for gateways and CAOperator for
// operators; IssueDev issues one more client certificate from them.
// load.go turns files into tls.Configs.
//
// # Refused handshakes
//
// ExplainHandshake (handshake.go) names the certificate problem of a failed
// handshake, from either side: the alert a peer refused this side's
// certificate with, or this side's verification of the peer's. Over TLS 1.3
// a server refuses a client's certificate after the client's side of the
// handshake is done, so a gRPC client sees only its next write fail;
// ProbeTLS makes one bare handshake to read the server's alert.
// ServerCredentials and LogRefused (credentials.go) log every handshake a
// server refuses, which grpc-go leaves to its own logger.
//
// It must never log, print or return a private key's bytes, and never
// overwrite an existing key or certificate file. The development CAs are for
// development: a store's production certificates come from the chain's own
// PKI (SPIFFE/SPIRE can issue them).
package certs
