package monitoring_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// promtool returns promtool's path, or skips the test where it is missing.
// It is not a go tool: prometheus/prometheus's module graph is too large to
// pin for one test.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		t.Skip("promtool is not installed here (Debian: apt-get install prometheus; .ci/run installs it): the rules are not checked or unit-tested by Prometheus")
	}
	return path
}

// runPromtool runs promtool with args in this folder and fails the test
// with its output unless it succeeds.
func runPromtool(t *testing.T, args ...string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), promtool(t), args...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %v: %v\n%s", args, err, out)
	}
	t.Logf("promtool %v:\n%s", args, out)
}

// promtool accepts both rule files: syntax, PromQL, templates, and no
// duplicate rules.
func TestPromtool_CheckRules(t *testing.T) {
	runPromtool(t, "check", "rules", alertsFile, rulesFile)
}

// Every alert fires when it should and stays quiet when it should not, and
// every recording rule records what it should (tests/*.yml).
func TestPromtool_TestRules(t *testing.T) {
	runPromtool(t, append([]string{"test", "rules"}, glob(t, testsGlob)...)...)
}

// promtool accepts the example configurations: the store host's agent, and
// the chain's Prometheus with the rule files where it expects them.
func TestPromtool_CheckExamples(t *testing.T) {
	runPromtool(t, "check", "config", "--agent", "examples/prometheus-store.yml")

	dir := t.TempDir()
	for src, dst := range map[string]string{
		"examples/prometheus-chain.yml": "prometheus-chain.yml",
		alertsFile:                      "storegate/" + alertsFile,
		rulesFile:                       "storegate/" + rulesFile,
	} {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(dir, dst)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	runPromtool(t, "check", "config", filepath.Join(dir, "prometheus-chain.yml"))
}
