package monitoring_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"testing"

	"go.yaml.in/yaml/v3"
)

// The files under test, relative to this folder.
const (
	alertsFile  = "alerts.yml"
	rulesFile   = "rules.yml"
	runbookFile = "runbook.md"
	testsGlob   = "tests/*.yml"
	dashGlob    = "dashboards/*.json"
)

// ruleFile is a Prometheus rule file.
type ruleFile struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []rule `yaml:"rules"`
	} `yaml:"groups"`
}

// rule is an alerting rule (Alert set) or a recording rule (Record set).
type rule struct {
	Alert       string            `yaml:"alert"`
	Record      string            `yaml:"record"`
	Expr        string            `yaml:"expr"`
	For         string            `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
}

// unitTests is a promtool test file, as far as these tests read it.
type unitTests struct {
	RuleFiles []string `yaml:"rule_files"`
	Tests     []struct {
		Name        string `yaml:"name"`
		InputSeries []struct {
			Series string `yaml:"series"`
		} `yaml:"input_series"`
		AlertRuleTests []struct {
			EvalTime  string `yaml:"eval_time"`
			Alertname string `yaml:"alertname"`
			ExpAlerts []any  `yaml:"exp_alerts"`
		} `yaml:"alert_rule_test"`
		PromQLExprTests []struct {
			Expr       string `yaml:"expr"`
			ExpSamples []struct {
				Labels string `yaml:"labels"`
			} `yaml:"exp_samples"`
		} `yaml:"promql_expr_test"`
	} `yaml:"tests"`
}

// readYAML decodes the YAML file path into v.
func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// rules returns the rules of alerts.yml and rules.yml.
func rules(t *testing.T) (alerts, records []rule) {
	t.Helper()
	for _, path := range []string{alertsFile, rulesFile} {
		var f ruleFile
		readYAML(t, path, &f)
		if len(f.Groups) == 0 {
			t.Fatalf("%s: no rule groups", path)
		}
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				switch {
				case r.Alert != "" && path == alertsFile:
					alerts = append(alerts, r)
				case r.Record != "" && path == rulesFile:
					records = append(records, r)
				default:
					t.Fatalf("%s: group %s: a rule that is neither an alert in %s nor a record in %s: %+v", path, g.Name, alertsFile, rulesFile, r)
				}
			}
		}
	}
	return alerts, records
}

// glob returns the files matching pattern, failing when there are none.
func glob(t *testing.T, pattern string) []string {
	t.Helper()
	paths, err := filepath.Glob(pattern)
	if err != nil {
		t.Fatal(err)
	}
	if len(paths) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	sort.Strings(paths)
	return paths
}

// unitTestFiles returns every promtool test file, decoded, by path.
func unitTestFiles(t *testing.T) map[string]unitTests {
	t.Helper()
	files := map[string]unitTests{}
	for _, path := range glob(t, testsGlob) {
		var f unitTests
		readYAML(t, path, &f)
		files[path] = f
	}
	return files
}

// query is one PromQL expression or series selector, and where it was
// found.
type query struct {
	where string
	text  string
}

// queries returns every PromQL text the rules, the promtool tests and the
// dashboards hold: rule expressions, test input series, test expressions and
// expected samples, dashboard targets and template variable queries.
func queries(t *testing.T) []query {
	t.Helper()
	var qs []query
	alerts, records := rules(t)
	for _, r := range alerts {
		qs = append(qs, query{alertsFile + ": " + r.Alert, r.Expr})
	}
	for _, r := range records {
		qs = append(qs, query{rulesFile + ": " + r.Record, r.Expr})
	}
	for path, f := range unitTestFiles(t) {
		for _, tc := range f.Tests {
			where := path + ": " + tc.Name
			for _, s := range tc.InputSeries {
				qs = append(qs, query{where + ": input series", s.Series})
			}
			for _, e := range tc.PromQLExprTests {
				qs = append(qs, query{where + ": expr", e.Expr})
				for _, s := range e.ExpSamples {
					qs = append(qs, query{where + ": expected sample", s.Labels})
				}
			}
		}
	}
	for _, path := range glob(t, dashGlob) {
		qs = append(qs, dashboardQueries(t, path)...)
	}
	return qs
}

// dashboardQueries returns the PromQL of a Grafana dashboard: every
// panel's targets (rows nest panels) and the template variables' queries.
func dashboardQueries(t *testing.T, path string) []query {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID        string    `json:"uid"`
		Title      string    `json:"title"`
		Panels     []panel   `json:"panels"`
		Templating variables `json:"templating"`
	}
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if d.UID == "" || d.Title == "" || len(d.Panels) == 0 {
		t.Fatalf("%s: want a uid, a title and panels", path)
	}
	var qs []query
	var walk func(ps []panel)
	walk = func(ps []panel) {
		for _, p := range ps {
			for _, tg := range p.Targets {
				if tg.Expr == "" {
					t.Errorf("%s: panel %q: target %s has no expr", path, p.Title, tg.RefID)
				}
				qs = append(qs, query{fmt.Sprintf("%s: panel %q", path, p.Title), tg.Expr})
			}
			walk(p.Panels)
		}
	}
	walk(d.Panels)
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		// Grafana writes a query variable's query as an object, older
		// versions as a string.
		var q struct {
			Query string `json:"query"`
		}
		if err := json.Unmarshal(v.Query, &q); err != nil {
			if err := json.Unmarshal(v.Query, &q.Query); err != nil {
				t.Fatalf("%s: variable %s: query is neither an object nor a string", path, v.Name)
			}
		}
		where := fmt.Sprintf("%s: variable %s", path, v.Name)
		qs = append(qs, query{where, v.Definition}, query{where, q.Query})
	}
	return qs
}

type panel struct {
	Title   string `json:"title"`
	Targets []struct {
		RefID string `json:"refId"`
		Expr  string `json:"expr"`
	} `json:"targets"`
	Panels []panel `json:"panels"`
}

type variables struct {
	List []struct {
		Name       string          `json:"name"`
		Type       string          `json:"type"`
		Definition string          `json:"definition"`
		Query      json.RawMessage `json:"query"`
	} `json:"list"`
}
