//go:build race

package main_test

// raceEnabled builds the binaries under test with -race too.
const raceEnabled = true
