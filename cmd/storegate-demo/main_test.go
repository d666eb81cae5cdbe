package main

import (
	"os/exec"
	"strings"
	"testing"
)

// A printed command, pasted into a shell, runs with the arguments the demo
// ran it with.
func TestShellJoin_RoundTrip(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh here")
	}
	args := []string{"--aim", "]Q1", "--reason", "account takeover reported", "it's", "$HOME", "a;b", "*", "", "--line", "4901234567894:food:2:300", "/tmp/x y/token-1.txt", "`id`", "!", "~"}
	out, err := exec.Command(sh, "-c", `for a in `+shellJoin(args)+`; do printf '[%s]\n' "$a"; done`).Output()
	if err != nil {
		t.Fatal(err)
	}
	var want strings.Builder
	for _, a := range args {
		want.WriteString("[" + a + "]\n")
	}
	if string(out) != want.String() {
		t.Errorf("sh read %q back as\n%s\nwant\n%s", shellJoin(args), out, want.String())
	}
}
