package main

import "flag"

// flagSetWithParse refuses stray arguments and runs an optional hook after
// parsing, for flags whose value feeds a struct built before parsing.
type flagSetWithParse struct {
	fs    *flag.FlagSet
	after func()
}

func (f *flagSetWithParse) parse(args []string) error {
	if err := f.fs.Parse(args); err != nil {
		return err
	}
	if f.fs.NArg() > 0 {
		return usagef("unexpected arguments %q", f.fs.Args())
	}
	if f.after != nil {
		f.after()
	}
	return nil
}
