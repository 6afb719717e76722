package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/urfave/cli/v2"
)

// deps is what subcommands get from the outside world; nothing below run
// reads os.Args, os.Getenv, os.Stdout or os.Stderr itself.
type deps struct {
	getenv         func(string) string
	stdout, stderr io.Writer
}

// commands builds the subcommands: adding one is a file plus a line here.
var commands = []func(deps) *cli.Command{
	validateCommand,
	qaCommand,
	serveCommand,
	auditCommand,
	quickstartCommand,
}

// run is main without the process: args include the program name.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) error {
	return newApp(deps{getenv: getenv, stdout: stdout, stderr: stderr}).RunContext(ctx, args)
}

func newApp(d deps) *cli.App {
	app := &cli.App{
		Name:  "promotebot",
		Usage: "promote container images through a GitOps config repository, decided in Slack",
		Description: "promotebot is a GitOps promotion bot. CI tells it that an image was built; it writes " +
			"a QA overlay for the branch or tag into the config repository, asks QA and the project's owners " +
			"in Slack, and on an owner's decision changes the production overlay through a GitHub pull " +
			"request (or a direct commit). Argo CD or Flux reconcile the cluster from the repository, so " +
			"every decision ends up in git history. Every flag can also be set through an environment " +
			"variable PROMOTEBOT_<FLAG>, such as PROMOTEBOT_CONFIG for --config.",
		Writer:    d.stdout,
		ErrWriter: d.stderr,
		Suggest:   true,
		// Errors go back to main, which alone decides the exit status.
		ExitErrHandler: func(*cli.Context, error) {},
	}
	for _, newCommand := range commands {
		cmd := newCommand(d)
		bindEnv(cmd.Flags, &cmd.Before, d.getenv)
		app.Commands = append(app.Commands, cmd)
	}
	bindEnv(app.Flags, &app.Before, d.getenv)
	return app
}

// envName is the environment variable a flag falls back to: "config" reads
// PROMOTEBOT_CONFIG, "data-dir" PROMOTEBOT_DATA_DIR.
func envName(flag string) string {
	return "PROMOTEBOT_" + strings.ToUpper(strings.ReplaceAll(flag, "-", "_"))
}

// bindEnv makes every flag in flags fall back to its PROMOTEBOT_<FLAG>
// variable, read through getenv rather than the process environment, and
// says so in the flag's usage. The variable applies only when the flag is
// not given on the command line; before runs afterwards.
func bindEnv(flags []cli.Flag, before *cli.BeforeFunc, getenv func(string) string) {
	for _, f := range flags {
		mentionEnv(f)
	}
	next := *before
	*before = func(c *cli.Context) error {
		for _, f := range flags {
			name := f.Names()[0]
			v := getenv(envName(name))
			if v == "" || c.IsSet(name) {
				continue
			}
			if err := c.Set(name, v); err != nil {
				return fmt.Errorf("%s: %w", envName(name), err)
			}
		}
		if next != nil {
			return next(c)
		}
		return nil
	}
}

// mentionEnv appends the flag's variable to its usage text. Flag types are
// listed as commands start using them; TestEveryFlagNamesItsVariable fails
// for one that is missing.
func mentionEnv(f cli.Flag) {
	note := " [$" + envName(f.Names()[0]) + "]"
	switch f := f.(type) {
	case *cli.StringFlag:
		f.Usage += note
	case *cli.BoolFlag:
		f.Usage += note
	case *cli.IntFlag:
		f.Usage += note
	case *cli.DurationFlag:
		f.Usage += note
	}
}

// configFlag is the --config flag that every command reading the
// configuration shares.
func configFlag() *cli.StringFlag {
	return &cli.StringFlag{
		Name:      "config",
		Aliases:   []string{"c"},
		Usage:     "read the configuration from `FILE`",
		TakesFile: true,
	}
}

// configPath returns the --config value, or an error naming both ways to
// give it.
func configPath(c *cli.Context) (string, error) {
	path := c.String("config")
	if path == "" {
		return "", fmt.Errorf("no configuration: give --config FILE or set %s", envName("config"))
	}
	return path, nil
}
