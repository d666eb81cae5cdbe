// Package testca makes throwaway certificate authorities and certificates
// of any shape for tests: a client certificate with no URI SAN, with
// several, with another chain's SPIFFE ID, or a CA without the name
// constraints storegate's development CAs carry. No issuing tool of
// storegate's makes such certificates, yet a server must be seen to refuse
// them.
//
// It is for tests only: its keys live in memory for one test, and it must
// never be imported by a program.
package testca
