// Package durable holds what storegate's packages that write files need so
// that a power cut cannot lose what they reported written: today, making a
// directory's new entries durable (SyncDir), which bbolt does not do for the
// file it creates.
//
// It must never import another storegate package: storecache, central and
// hqkeys import it.
package durable
