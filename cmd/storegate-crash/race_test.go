//go:build race

package main

// raceEnabled builds the daemons under test with -race too.
const raceEnabled = true
