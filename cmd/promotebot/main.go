// Command promotebot is a GitOps promotion bot: CI reports builds, the bot
// writes QA and production overlays into a config repository, and people
// decide in Slack. Run "promotebot --help" for its subcommands.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args, os.Getenv, os.Stdout, os.Stderr)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		code := 1
		var ec cli.ExitCoder
		if errors.As(err, &ec) {
			code = ec.ExitCode() // audit --check: 1 findings, 2 usage
		}
		os.Exit(code)
	}
}
