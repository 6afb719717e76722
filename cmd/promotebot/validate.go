package main

import (
	"fmt"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/promote"
)

// listedProjects bounds the project ids validate names.
const listedProjects = 20

func validateCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:  "validate",
		Usage: "check a configuration file and list every problem with its line",
		Description: "validate loads the configuration as serve would, checks every key and the key files it " +
			"names, and prints a summary. It contacts neither git, GitHub nor Slack.",
		Flags: []cli.Flag{configFlag()},
		Action: func(c *cli.Context) error {
			path, err := configPath(c)
			if err != nil {
				return err
			}
			cfg, err := promote.LoadConfig(path)
			if err != nil {
				return err
			}
			var ids []string
			for _, p := range cfg.Projects[:min(len(cfg.Projects), listedProjects)] {
				ids = append(ids, p.ID)
			}
			if n := len(cfg.Projects); n > listedProjects {
				ids = append(ids, fmt.Sprintf("… and %d more", n-listedProjects))
			}
			noun := "projects"
			if len(cfg.Projects) == 1 {
				noun = "project"
			}
			_, err = fmt.Fprintf(d.stdout, "config OK: %d %s (%s)\n", len(cfg.Projects), noun, strings.Join(ids, ", "))
			return err
		},
	}
}
