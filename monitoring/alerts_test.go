package monitoring_test

import (
	"bufio"
	"os"
	"regexp"
	"strings"
	"testing"
)

// runbookPrefix is how every alert's runbook_url starts: the runbook's
// path in the repository (README.md says how to point it elsewhere).
const runbookPrefix = "monitoring/runbook.md#"

// runbookSections returns the alert names runbook.md has a "## Name"
// section for.
func runbookSections(t *testing.T) map[string]bool {
	t.Helper()
	f, err := os.Open(runbookFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sections := map[string]bool{}
	heading := regexp.MustCompile(`^## (\S+)$`)
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if m := heading.FindStringSubmatch(sc.Text()); m != nil {
			sections[m[1]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return sections
}

// Every alert has a severity, a summary, a description, and a runbook_url
// that names its own section of runbook.md; every section is an alert's.
func TestAlerts_Runbook(t *testing.T) {
	alerts, _ := rules(t)
	sections := runbookSections(t)
	names := map[string]bool{}
	for _, a := range alerts {
		names[a.Alert] = true
		if s := a.Labels["severity"]; s != "warning" && s != "critical" {
			t.Errorf("%s: severity %q, want warning or critical", a.Alert, s)
		}
		for _, k := range []string{"summary", "description"} {
			if a.Annotations[k] == "" {
				t.Errorf("%s: no %s annotation", a.Alert, k)
			}
		}
		// GitHub makes a heading's anchor from its text in lower case.
		if got, want := a.Annotations["runbook_url"], runbookPrefix+strings.ToLower(a.Alert); got != want {
			t.Errorf("%s: runbook_url = %q, want %q", a.Alert, got, want)
		}
		if !sections[a.Alert] {
			t.Errorf("%s: %s has no section \"## %s\"", a.Alert, runbookFile, a.Alert)
		}
	}
	for s := range sections {
		if !names[s] {
			t.Errorf("%s: section %s is no alert's", runbookFile, s)
		}
	}
}

// Every alert has a promtool test in which it fires and one in which it
// stays quiet, and every test file loads the rule files it tests from this
// folder.
func TestAlerts_EachTestedBothWays(t *testing.T) {
	alerts, _ := rules(t)
	fires, quiet := map[string]int{}, map[string]int{}
	for path, f := range unitTestFiles(t) {
		if len(f.RuleFiles) == 0 {
			t.Errorf("%s: no rule_files", path)
		}
		for _, rf := range f.RuleFiles {
			if rf != "../"+alertsFile && rf != "../"+rulesFile {
				t.Errorf("%s: rule file %s, want ../%s or ../%s", path, rf, alertsFile, rulesFile)
			}
		}
		for _, tc := range f.Tests {
			for _, at := range tc.AlertRuleTests {
				if len(at.ExpAlerts) > 0 {
					fires[at.Alertname]++
				} else {
					quiet[at.Alertname]++
				}
			}
		}
	}
	names := map[string]bool{}
	for _, a := range alerts {
		names[a.Alert] = true
		if fires[a.Alert] == 0 {
			t.Errorf("%s: no promtool test expects it to fire", a.Alert)
		}
		if quiet[a.Alert] == 0 {
			t.Errorf("%s: no promtool test expects it to stay quiet", a.Alert)
		}
	}
	for name := range fires {
		if !names[name] {
			t.Errorf("a promtool test expects %s, which is no alert", name)
		}
	}
}
