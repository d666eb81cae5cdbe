// Package loop runs the periodic work of storegate's long-lived types (the
// gateway's pruner, HQ's voiding of stale holds, the health checker, the
// scanners' purge of expired credentials, storegated's systemd watchdog) the
// one way: Every calls a function at each tick of an interval until a
// context ends.
//
// It must never import another storegate package: the domain (gateway) and
// adapters import it alike.
package loop
