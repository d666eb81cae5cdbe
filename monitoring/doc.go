// Package monitoring holds storegate's Prometheus rules and Grafana
// dashboards, and the tests that keep them true; it has no Go code of its
// own.
//
//	alerts.yml          alert rules, each with a runbook_url into runbook.md
//	rules.yml           recording rules (store: and chain: levels)
//	runbook.md          one section per alert: meaning, threshold, what to do
//	dashboards/*.json   Grafana dashboards: one store, the chain
//	tests/*.yml         promtool unit tests of every alert and recording rule
//
// The tests check that every metric the rules, dashboards and promtool
// tests name is one storegated exports (read from package metrics, never
// from a list kept here), that every label value they match on is one it
// can export, that every alert has a runbook section and a promtool test
// that fires it and one that keeps it quiet, and run promtool where it is
// installed.
//
// It must never hold a threshold that its runbook does not explain, nor a
// rule that only a recording rule feeds: an alert reads the raw metrics, so
// that it fires even where rules.yml is not loaded.
package monitoring
