package certs

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"time"
)

// Problem is what is wrong with a certificate in a TLS handshake that
// failed, in the terms a person fixes it by.
type Problem string

// The certificate problems a handshake error can name.
const (
	// ProblemNone: the error says nothing about a certificate (the
	// connection was refused, reset or timed out; a TLS version or ALPN
	// mismatch).
	ProblemNone Problem = ""
	// ProblemNoCertificate: the server requires a client certificate and
	// the client presented none.
	ProblemNoCertificate Problem = "no_certificate"
	// ProblemUnknownAuthority: the certificate is not signed by a CA the
	// verifying side trusts.
	ProblemUnknownAuthority Problem = "unknown_authority"
	// ProblemExpired: the certificate has expired, or is not valid yet.
	ProblemExpired Problem = "expired"
	// ProblemWrongName: the server's certificate is not for the name the
	// client dialled.
	ProblemWrongName Problem = "wrong_name"
	// ProblemWrongUsage: the certificate is not for this use (a server
	// certificate presented as a client's, or the other way round).
	ProblemWrongUsage Problem = "wrong_usage"
	// ProblemRefused: the certificate was refused for another reason (the
	// peer's alert or the verifier says which).
	ProblemRefused Problem = "refused"
)

// Problems lists the problems a failed handshake is counted under; it is
// the bounded set of a metric's label values.
var Problems = []Problem{ProblemNoCertificate, ProblemUnknownAuthority, ProblemExpired, ProblemWrongName, ProblemWrongUsage, ProblemRefused}

// HandshakeError is a failed TLS handshake explained: which certificate was
// at fault and what is wrong with it. Err is what crypto/tls returned.
type HandshakeError struct {
	// Problem is what is wrong.
	Problem Problem
	// Peer is true when the peer's certificate is at fault (this side's
	// verification refused it), false when this side's own is (the peer
	// refused it, and said so in an alert).
	Peer bool
	// Detail says more, for example when the certificate expired, or which
	// names it is for; empty when there is nothing more to say.
	Detail string
	// Claimed is the identity the refused peer certificate names (its
	// first URI SAN, or its common name), unverified; empty when this
	// side's certificate is at fault or the peer presented none.
	Claimed string
	Err     error
}

// Error names the problem and whose certificate it is.
func (e *HandshakeError) Error() string {
	whose := "own certificate"
	if e.Peer {
		whose = "peer certificate"
	}
	s := whose + " " + string(e.Problem)
	if e.Detail != "" {
		s += ": " + e.Detail
	}
	return s
}

// Sentence says what is wrong for a person, naming the other side of the
// connection as peer ("client", "gateway", "HQ"); this side is the client
// unless peer is "client".
func (e *HandshakeError) Sentence(peer string) string {
	own := "client"
	if peer == "client" {
		own = "server"
	}
	if e.Peer {
		// This side refused the peer's certificate.
		theirs := "the " + peer + "'s certificate"
		switch e.Problem {
		case ProblemNoCertificate:
			return "the " + peer + " presented no certificate"
		case ProblemUnknownAuthority:
			return withDetail(theirs+" is not signed by a CA this "+own+" trusts", e.Detail)
		case ProblemExpired, ProblemWrongName:
			return theirs + " " + e.Detail
		case ProblemWrongUsage:
			return theirs + " is not a " + roleOf(peer) + " certificate: " + e.Detail
		default:
			return withDetail(theirs+" was refused", e.Detail)
		}
	}
	// The peer refused this side's certificate.
	ours := "the " + own + " certificate"
	switch e.Problem {
	case ProblemNoCertificate:
		return "the " + peer + " requires a " + own + " certificate and none was presented"
	case ProblemUnknownAuthority:
		return "the " + peer + " does not trust the CA that signed " + ours
	case ProblemExpired:
		return "the " + peer + " refused " + ours + " as expired (or not valid yet)"
	default:
		return withDetail("the "+peer+" refused "+ours, e.Detail)
	}
}

// roleOf names what kind of certificate a peer should show.
func roleOf(peer string) string {
	if peer == "client" {
		return "client"
	}
	return "server"
}

func withDetail(s, detail string) string {
	if detail == "" {
		return s
	}
	return s + " (" + detail + ")"
}

func (e *HandshakeError) Unwrap() error { return e.Err }

// ExplainHandshake reads a TLS handshake error, from either side: the
// alert a peer sent when it refused this side's certificate (TLS 1.3 sends
// a client's after the client's side of the handshake is done, so a gRPC
// client often sees it only as a failed write: ProbeTLS reads it), or the
// verification error when this side refused the peer's. It returns nil when
// err names no certificate problem.
func ExplainHandshake(err error) *HandshakeError {
	if err == nil {
		return nil
	}
	var he *HandshakeError
	if errors.As(err, &he) {
		return he
	}
	if p, detail, ok := fromAlert(err); ok {
		return &HandshakeError{Problem: p, Detail: detail, Err: err}
	}
	if p, detail, ok := fromVerification(err); ok {
		return &HandshakeError{Problem: p, Peer: true, Detail: detail, Claimed: claimed(err), Err: err}
	}
	return nil
}

// fromAlert reads the alert a peer refused this side's certificate with.
// crypto/tls reports it as a net.OpError "remote error" whose text is the
// alert's description.
func fromAlert(err error) (Problem, string, bool) {
	var op *net.OpError
	if !errors.As(err, &op) || op.Op != "remote error" || op.Err == nil {
		return ProblemNone, "", false
	}
	switch alert := strings.TrimPrefix(op.Err.Error(), "tls: "); alert {
	case "certificate required":
		return ProblemNoCertificate, "", true
	case "unknown certificate authority":
		return ProblemUnknownAuthority, "", true
	case "expired certificate":
		return ProblemExpired, "", true
	case "bad certificate", "unsupported certificate", "revoked certificate", "unknown certificate", "access denied":
		return ProblemRefused, alert, true
	default:
		return ProblemNone, "", false
	}
}

// fromVerification reads this side's verification of the peer's
// certificate.
func fromVerification(err error) (Problem, string, bool) {
	if err.Error() == "tls: client didn't provide a certificate" {
		// crypto/tls's server says so in text alone.
		return ProblemNoCertificate, "", true
	}
	var unknown x509.UnknownAuthorityError
	if errors.As(err, &unknown) {
		issuer := ""
		if unknown.Cert != nil {
			issuer = "issued by " + quote(unknown.Cert.Issuer.CommonName)
		}
		return ProblemUnknownAuthority, issuer, true
	}
	var host x509.HostnameError
	if errors.As(err, &host) {
		return ProblemWrongName, fmt.Sprintf("is for %s, not %s", certNames(host.Certificate), quote(host.Host)), true
	}
	var invalid x509.CertificateInvalidError
	if errors.As(err, &invalid) {
		switch invalid.Reason {
		case x509.Expired:
			if c := invalid.Cert; c != nil {
				if time.Now().Before(c.NotBefore) {
					return ProblemExpired, "is not valid before " + c.NotBefore.UTC().Format(time.RFC3339), true
				}
				return ProblemExpired, "expired " + c.NotAfter.UTC().Format(time.RFC3339), true
			}
			return ProblemExpired, "has expired, or is not valid yet", true
		case x509.IncompatibleUsage:
			return ProblemWrongUsage, "its extended key usage does not allow this use", true
		default:
			return ProblemRefused, invalid.Error(), true
		}
	}
	var verr *tls.CertificateVerificationError
	if errors.As(err, &verr) {
		return ProblemRefused, verr.Err.Error(), true
	}
	return ProblemNone, "", false
}

// claimed returns what the refused certificate says it is, for a log:
// unverified, and clipped.
func claimed(err error) string {
	var verr *tls.CertificateVerificationError
	if !errors.As(err, &verr) || len(verr.UnverifiedCertificates) == 0 {
		return ""
	}
	c := verr.UnverifiedCertificates[0]
	if len(c.URIs) > 0 {
		return clip(c.URIs[0].String())
	}
	return clip(c.Subject.CommonName)
}

// certNames lists the names a server certificate is for.
func certNames(c *x509.Certificate) string {
	if c == nil {
		return "other names"
	}
	var names []string
	names = append(names, c.DNSNames...)
	for _, ip := range c.IPAddresses {
		names = append(names, ip.String())
	}
	if len(names) == 0 {
		return "no name"
	}
	if len(names) > 8 {
		names = append(names[:8], "…")
	}
	return clip(strings.Join(names, ", "))
}

func quote(s string) string { return fmt.Sprintf("%q", clip(s)) }

// ProbeWait bounds how long ProbeTLS waits, after its side of the
// handshake, for the server to refuse the client's certificate.
const ProbeWait = 2 * time.Second

// ProbeTLS makes one TLS connection to addr with cfg, as a gRPC client does
// (ALPN h2), to learn why a call over it failed. It returns the handshake
// error explained (a *HandshakeError when ExplainHandshake can name the
// certificate problem), or, once its side of the handshake is done, the
// alert the server refuses the client's certificate with. It returns nil
// when the server took the connection (it sent something, or waited
// ProbeWait without refusing).
func ProbeTLS(ctx context.Context, addr string, cfg *tls.Config) error {
	cfg = cfg.Clone()
	cfg.NextProtos = []string{"h2"}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: ProbeWait}, Config: cfg}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		if he := ExplainHandshake(err); he != nil {
			return he
		}
		return err
	}
	defer conn.Close()
	_ = conn.SetReadDeadline(time.Now().Add(ProbeWait))
	_, err = conn.Read(make([]byte, 1))
	var ne net.Error
	switch {
	case err == nil, errors.As(err, &ne) && ne.Timeout():
		return nil
	case errors.Is(err, io.EOF):
		return errors.New("the server closed the connection after the TLS handshake without saying why")
	}
	if he := ExplainHandshake(err); he != nil {
		return he
	}
	return err
}
