package monitoring_test

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// Every alert name and severity examples/alertmanager.yml routes or inhibits
// by is one alerts.yml has: a renamed alert must not silently lose its route.
func TestExamples_AlertmanagerNamesAlerts(t *testing.T) {
	b, err := os.ReadFile("examples/alertmanager.yml")
	if err != nil {
		t.Fatal(err)
	}
	alerts, _ := rules(t)
	names, severities := map[string]bool{}, map[string]bool{}
	for _, a := range alerts {
		names[a.Alert] = true
		severities[a.Labels["severity"]] = true
	}
	matcher := regexp.MustCompile(`(alertname|severity)=~?"([^"]+)"`)
	found := 0
	for _, m := range matcher.FindAllStringSubmatch(string(b), -1) {
		for _, v := range strings.Split(m[2], "|") {
			found++
			if known := map[string]map[string]bool{"alertname": names, "severity": severities}[m[1]]; !known[v] {
				t.Errorf("examples/alertmanager.yml matches %s=%q, which no alert in %s has", m[1], v, alertsFile)
			}
		}
	}
	if found == 0 {
		t.Fatal("examples/alertmanager.yml: no alertname or severity matcher found")
	}
}

// The scrape config README.md shows is the one in
// examples/prometheus-store.yml, which promtool checks.
func TestExamples_ReadmeScrapeConfig(t *testing.T) {
	readme, err := os.ReadFile("README.md")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindSubmatch(readme)
	if m == nil {
		t.Fatal("README.md has no yaml block")
	}
	example, err := os.ReadFile("examples/prometheus-store.yml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(example), string(m[1])) {
		t.Errorf("README.md's scrape config is not in examples/prometheus-store.yml:\n%s", m[1])
	}
}
