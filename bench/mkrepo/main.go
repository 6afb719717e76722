// Command mkrepo builds the benchmark config repository (see
// gittest.MakeConfigRepo) and prints the bare repository's path.
//
//	go run ./bench/mkrepo -apps 500 -commits 20000 -out bench/out/500x20000
//	go run ./bench/mkrepo -apps 500 -commits 20000 -people -out bench/out/p20
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/promotebot/promotebot/gitops/gittest"
)

func main() {
	if err := run(os.Args[1:], os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "mkrepo:", err)
		os.Exit(1)
	}
}

// run parses args, builds the repository, prints its path on stdout and the
// time taken on stderr.
func run(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("mkrepo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	apps := fs.Int("apps", 500, "number of apps (app-000, …)")
	commits := fs.Int("commits", 1000, "commits of history on main, the initial one included")
	people := fs.Bool("people", false, "every commit after the initial one is a person's edit of production, without promotebot trailers")
	out := fs.String("out", "", "directory that receives config.git (required; config.git must not exist)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return fmt.Errorf("-out is required and no arguments are accepted")
	}
	start := time.Now()
	bare, err := gittest.MakeConfigRepoWith(*out, gittest.ConfigRepoOptions{Apps: *apps, Commits: *commits, People: *people})
	if err != nil {
		return err
	}
	fmt.Fprintf(stderr, "mkrepo: %d apps × %d commits built in %s\n",
		*apps, *commits, time.Since(start).Round(time.Millisecond))
	if _, err := fmt.Fprintln(stdout, bare); err != nil {
		return fmt.Errorf("print path: %w", err)
	}
	return nil
}
