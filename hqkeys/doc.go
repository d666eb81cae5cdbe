// Package hqkeys keeps HQ's key directory: the root key that signs keysets,
// policies and freeze lists, the token-signing key, and the keyset naming
// it, as `storegatectl keys init` makes them and storegate-hq loads them.
// Keys are Ed25519 in PEM files (private keys PKCS#8, public keys PKIX), in
// the formats package gateway defines.
//
// It is its own package, beside the domain rather than in it, because it
// reads and writes files (the domain does no I/O) and because storegatectl,
// which ships to every store, must not import HQ's ledger in central to
// reach it.
//
// It must never overwrite a key, leave a partial key set behind, write a
// private key readable by group or others, or load one that is.
package hqkeys
