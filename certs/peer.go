package certs

import (
	"context"
	"crypto/x509"
	"fmt"
	"slices"

	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/peer"
)

// PeerIdentity returns the identity of the caller of a gRPC call, read
// from the certificate its TLS handshake verified (the leaf of
// VerifiedChains[0]), never from anything the request says. The identity
// must be of trust domain chain and of one of kinds (none given: any kind).
//
// Errors wrap ErrNoIdentity when the connection is not TLS or the peer
// presented no verified certificate, ErrInvalidIdentity when the leaf is not
// a client certificate (ExtKeyUsage clientAuth) or does not name exactly one
// storegate identity of chain, and ErrKindRefused when it names one of
// another kind. The first two mean Unauthenticated, the third
// PermissionDenied.
func PeerIdentity(ctx context.Context, chain string, kinds ...Kind) (Identity, error) {
	p, ok := peer.FromContext(ctx)
	if !ok {
		return Identity{}, ErrNoIdentity
	}
	info, ok := p.AuthInfo.(credentials.TLSInfo)
	if !ok {
		return Identity{}, ErrNoIdentity
	}
	if len(info.State.VerifiedChains) == 0 || len(info.State.VerifiedChains[0]) == 0 {
		return Identity{}, ErrNoIdentity
	}
	if !ValidChain(chain) {
		// A server without a trust domain must take nobody, not anybody.
		return Identity{}, fmt.Errorf("%w: the server has no valid trust domain configured (%q)", ErrInvalidIdentity, clip(chain))
	}
	leaf := info.State.VerifiedChains[0][0]
	if !slices.Contains(leaf.ExtKeyUsage, x509.ExtKeyUsageClientAuth) {
		return Identity{}, fmt.Errorf("%w: the certificate is not a client certificate (no clientAuth key usage)", ErrInvalidIdentity)
	}
	id, err := FromCertificate(leaf)
	if err != nil {
		return Identity{}, err
	}
	if id.Chain != chain {
		return Identity{}, fmt.Errorf("%w: %s is of trust domain %q, want %q", ErrInvalidIdentity, id, id.Chain, chain)
	}
	if len(kinds) > 0 && !slices.Contains(kinds, id.Kind) {
		return Identity{}, fmt.Errorf("%w: %s is a %s, want %s", ErrKindRefused, id, id.Kind, kindList(kinds))
	}
	return id, nil
}

// kindList names kinds for a message: "pos or supervisor".
func kindList(kinds []Kind) string {
	s := ""
	for i, k := range kinds {
		switch {
		case i == 0:
		case i == len(kinds)-1:
			s += " or "
		default:
			s += ", "
		}
		s += string(k)
	}
	return s
}
