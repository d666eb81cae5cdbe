// Tests of the files in systemd/: the unit as systemd-analyze judges it, and
// the udev rules' syntax. The package has no Go code; the files it checks
// are installed by `make package`.
package systemd_test

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

const (
	unitFile  = "storegated.service"
	udevRules = "61-storegate-scanners.rules"
	// maxExposure is the highest `systemd-analyze security` rating
	// accepted, on its 0 (safe) to 10 (exposed) scale.
	maxExposure = 2.0
)

// systemdAnalyze returns the tool's path, or skips the test where it is
// missing.
func systemdAnalyze(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed here (Debian: apt-get install systemd); the unit is not checked by systemd")
	}
	return path
}

// unitCopy writes the unit into a temporary folder with ExecStart pointing
// at an executable stub: systemd-analyze verify refuses a unit whose binary
// does not exist, and storegated is not installed here.
func unitCopy(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	stub := filepath.Join(dir, "storegated")
	if err := os.WriteFile(stub, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	text := string(b)
	if !strings.Contains(text, "ExecStart=/usr/bin/storegated ") {
		t.Fatal("the unit's ExecStart is not /usr/bin/storegated, where the package installs it")
	}
	text = strings.ReplaceAll(text, "ExecStart=/usr/bin/storegated ", "ExecStart="+stub+" ")
	path := filepath.Join(dir, unitFile)
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestUnit_Verify(t *testing.T) {
	tool := systemdAnalyze(t)
	out, err := exec.Command(tool, "verify", unitCopy(t)).CombinedOutput()
	// verify exits 0 on unknown keys and bad values, which it only
	// prints: any output is a failure.
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

var exposureLine = regexp.MustCompile(`Overall exposure level for ` + regexp.QuoteMeta(unitFile) + `: ([0-9.]+)`)

func TestUnit_Security(t *testing.T) {
	tool := systemdAnalyze(t)
	out, err := exec.Command(tool, "security", "--offline=true", "--no-pager", unitCopy(t)).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	m := exposureLine.FindSubmatch(out)
	if m == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, err := strconv.ParseFloat(string(m[1]), 64)
	if err != nil {
		t.Fatal(err)
	}
	if score > maxExposure {
		t.Fatalf("exposure %.1f, want at most %.1f:\n%s", score, maxExposure, out)
	}
	t.Logf("systemd-analyze security --offline=true: exposure %.1f (at most %.1f accepted)", score, maxExposure)
}

// unitSettings reads the unit's Key=Value lines, keeping repeated keys.
func unitSettings(t *testing.T) map[string][]string {
	t.Helper()
	f, err := os.Open(unitFile)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	set := map[string][]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, "[") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("unit line %q is not Key=Value", line)
		}
		set[k] = append(set[k], v)
	}
	return set
}

// The settings the daemon's behaviour depends on, checked where
// systemd-analyze is missing too.
func TestUnit_Settings(t *testing.T) {
	set := unitSettings(t)
	for k, want := range map[string]string{
		"Type":            "notify",
		"NotifyAccess":    "main",
		"DevicePolicy":    "closed",
		"ProtectSystem":   "strict",
		"NoNewPrivileges": "yes",
		"StateDirectory":  "storegate",
		"User":            "storegate",
		// The admin socket's home, /run/storegate/admin.sock, where
		// storegatectl looks for it; operators in the group may enter.
		"RuntimeDirectory":     "storegate",
		"RuntimeDirectoryMode": "0750",
	} {
		if got := set[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	if len(set["WatchdogSec"]) != 1 {
		t.Error("no WatchdogSec=: storegated's watchdog pings would go unheard")
	}
	if got := set["PrivateDevices"]; len(got) > 0 && got[0] != "no" {
		t.Errorf("PrivateDevices=%q would hide the lanes' scanners", got)
	}
	for _, dev := range []string{"char-ttyACM rw", "char-ttyUSB rw"} {
		found := false
		for _, v := range set["DeviceAllow"] {
			found = found || v == dev
		}
		if !found {
			t.Errorf("no DeviceAllow=%s: the scanners would be unreachable under DevicePolicy=closed", dev)
		}
	}
	if got := set["CapabilityBoundingSet"]; len(got) != 1 || got[0] != "" {
		t.Errorf("CapabilityBoundingSet=%q, want empty: the daemon needs no capability", got)
	}
}

// udevPair is one KEY{attr}OP"value" of a udev rule.
var udevPair = regexp.MustCompile(`^([A-Z_]+)(\{[A-Za-z0-9_.-]+\})?(==|!=|\+=|-=|:=|=)"([^"]*)"$`)

func TestUdevRules(t *testing.T) {
	f, err := os.Open(udevRules)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lanes := 0
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		var match, assign bool
		for _, pair := range strings.Split(line, ", ") {
			m := udevPair.FindStringSubmatch(pair)
			if m == nil {
				t.Fatalf("line %d: %q is not KEY{attr}OP\"value\"", n, pair)
			}
			match = match || m[3] == "==" || m[3] == "!="
			assign = assign || m[3] != "==" && m[3] != "!="
			if m[1] == "SYMLINK" && strings.HasPrefix(m[4], "storegate/lane-") {
				lanes++
			}
		}
		if !match || !assign {
			t.Errorf("line %d matches nothing or assigns nothing: %s", n, line)
		}
		if !strings.Contains(line, `SUBSYSTEM=="tty"`) {
			t.Errorf("line %d is not limited to tty devices: %s", n, line)
		}
	}
	if lanes == 0 {
		t.Fatal("no rule names a lane's scanner /dev/storegate/lane-N")
	}
	if tool, err := exec.LookPath("udevadm"); err == nil {
		// udevadm verify exists from systemd 254 on.
		out, err := exec.Command(tool, "verify", udevRules).CombinedOutput()
		switch {
		case err == nil:
		case strings.Contains(strings.ToLower(string(out)), "unknown command"):
			t.Log("udevadm has no verify command here: the syntax is checked by this test only")
		default:
			t.Fatalf("udevadm verify: %v\n%s", err, out)
		}
	}
}
