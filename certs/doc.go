// Package certs holds storegate's TLS material: it loads the certificates and
// keys of the mutual-TLS links (a lane's POS to the gateway, the gateway to
// the central service) into crypto/tls configurations, and it makes a
// development CA with server and client certificates for tests, the demo and
// a lab store.
//
// It must never log, print or return a private key's bytes, and never
// overwrite an existing key or certificate file. The development CA is for
// development: a store's production certificates come from the chain's own
// PKI.
package certs
