// Command storegatectl is the store engineer's and HQ's tool for storegate:
// keys, tokens, payments by hand, status, HQ's policies, freeze lists and
// keysets, and the audit log. Run
// "storegatectl help" for the commands.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sort"
	"strings"
	"syscall"
)

// Version is set at build time with -ldflags "-X main.Version=...".
var Version = "dev"

// Exit codes. A declined payment is a normal answer, but scripts need to
// tell it from an approval.
const (
	exitOK       = 0
	exitError    = 1
	exitUsage    = 2
	exitDeclined = 3
)

// errDeclined makes the process exit with exitDeclined.
var errDeclined = errors.New("declined")

// command is one subcommand.
type command struct {
	name    string
	summary string
	run     func(ctx context.Context, env *env, args []string) error
}

// env is what commands read and write, so tests can run them in process.
type env struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func commands() []command {
	return []command{
		{"keys init", "make HQ's root and token-signing keys and a signed keyset (development and tests)", runKeysInit},
		{"certs dev", "make a development CA and mutual-TLS certificates for storegated, storegate-hq and POS clients", runCertsDev},
		{"certs", "list certificates with their subject, issuer and expiry; exit 1 if any expires soon", runCerts},
		{"token mint", "sign a payment token as the central service would for a customer's phone", runTokenMint},
		{"authorize", "ask the gateway to authorize a basket, as a POS would", runAuthorize},
		{"reverse", "reverse an approved sale", runReverse},
		{"status", "show the gateway's state", runStatus},
		{"outbox", "list the settlements waiting for HQ and the disputed ones", runOutbox},
		{"keyset apply", "push a signed keyset to a running gateway", runKeysetApply},
		{"keyset add", "add a token or policy key to HQ's keyset and publish it", runKeysetAdd},
		{"keyset retire", "retire a key of HQ's keyset and publish it", runKeysetRetire},
		{"policy publish", "sign a readable policy (YAML/JSON) with the root key and publish it through HQ", runPolicyPublish},
		{"policy show", "print the policy a gateway enforces and its versions", runPolicyShow},
		{"document apply", "push a signed policy, freeze list or keyset straight to a gateway", runDocumentApply},
		{"freeze", "freeze accounts chain-wide (a signed freeze-list delta, published through HQ)", runFreeze},
		{"unfreeze", "take accounts off the freeze list", runUnfreeze},
		{"suspend", "stop payments at one store (--store) or the whole chain (--chain)", runSuspend},
		{"resume", "lift a suspension", runResume},
		{"audit verify", "check the audit log's hash chain (from a store file or a running gateway)", runAuditVerify},
		{"audit export", "write the audit log as JSON lines for investigators", runAuditExport},
		{"scan", "write a frame to a serial device as a barcode scanner would", runScan},
		{"scans watch", "stream what a lane's scanner reads, as its POS sees it", runScansWatch},
		{"hq books", "show the reference central service's books and check they add up (from a running storegate-hq)", runHQBooks},
	}
}

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, &env{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr}, os.Args[1:])
	stop()
	os.Exit(code)
}

func run(ctx context.Context, e *env, args []string) int {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		usage(e.stdout)
		return exitOK
	}
	if args[0] == "--version" || args[0] == "version" {
		fmt.Fprintln(e.stdout, "storegatectl", Version)
		return exitOK
	}
	cmd, rest, ok := lookup(args)
	if !ok {
		fmt.Fprintf(e.stderr, "storegatectl: unknown command %q\n\n", strings.Join(args[:min(2, len(args))], " "))
		usage(e.stderr)
		return exitUsage
	}
	err := cmd.run(ctx, e, rest)
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, flag.ErrHelp):
		return exitOK
	case errors.Is(err, errDeclined):
		return exitDeclined
	case errors.As(err, new(usageError)):
		fmt.Fprintf(e.stderr, "storegatectl %s: %v\n", cmd.name, err)
		return exitUsage
	default:
		fmt.Fprintf(e.stderr, "storegatectl %s: %v\n", cmd.name, err)
		return exitError
	}
}

// lookup finds the longest command name that args start with: "certs dev"
// before "certs".
func lookup(args []string) (command, []string, bool) {
	var best command
	n := 0
	for _, c := range commands() {
		words := strings.Fields(c.name)
		if len(words) > n && len(args) >= len(words) && strings.Join(args[:len(words)], " ") == c.name {
			best, n = c, len(words)
		}
	}
	return best, args[min(n, len(args)):], n > 0
}

func usage(w io.Writer) {
	fmt.Fprintf(w, "storegatectl: the store engineer's and HQ's tool for storegate.\n\nUsage: storegatectl COMMAND [flags]\n\nCommands:\n")
	cs := commands()
	sort.Slice(cs, func(i, j int) bool { return cs[i].name < cs[j].name })
	for _, c := range cs {
		fmt.Fprintf(w, "  %-15s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun \"storegatectl COMMAND --help\" for a command's flags.\n")
	fmt.Fprintf(w, "Exit status: 0 ok, 1 error, 2 bad usage, 3 payment declined.\n")
}

// usageError is a mistake in the command line.
type usageError struct{ msg string }

func (u usageError) Error() string { return u.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

// newFlags returns a flag set for a command, with its help text.
func newFlags(e *env, name, synopsis, help string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(e.stderr)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: storegatectl %s %s\n\n%s\n\nFlags:\n", name, synopsis, help)
		fs.PrintDefaults()
	}
	return fs
}
