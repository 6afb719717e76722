package main

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/overlay"
	"github.com/promotebot/promotebot/promote"
)

func qaCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "qa",
		Usage:     "write (or --delete) the QA overlay of a branch or tag into the config repository",
		ArgsUsage: " ",
		Description: "qa does the config-repo half of a build without the server: it writes the QA overlay " +
			"for the project's branch or tag with the image override and its Ambassador Mapping, renders it, " +
			"commits with promotebot's trailers and pushes. Running it again with the same image changes nothing.",
		Flags: []cli.Flag{
			configFlag(),
			&cli.StringFlag{Name: "project", Usage: "project `ID` from the configuration"},
			&cli.StringFlag{Name: "image", Usage: "image `REF` to deploy, with a tag or a digest"},
			&cli.StringFlag{Name: "type", Value: "branch", Usage: "`KIND` of target: branch or tag"},
			&cli.StringFlag{Name: "target", Usage: "branch or tag `NAME`"},
			&cli.StringFlag{Name: "build", Usage: "build `ID` for the Promotebot-Build trailer (default: cli-<time>)"},
			&cli.StringFlag{Name: "source", Usage: "`TEXT` for the Promotebot-Source trailer, e.g. the commit and CI URL"},
			&cli.BoolFlag{Name: "delete", Usage: "remove the target's QA overlay instead"},
		},
		Action: func(c *cli.Context) error { return runQA(c, d) },
	}
}

func runQA(c *cli.Context, d deps) error {
	path, err := configPath(c)
	if err != nil {
		return err
	}
	cfg, err := promote.LoadConfig(path)
	if err != nil {
		return err
	}
	p, ok := cfg.Project(c.String("project"))
	if !ok {
		return fmt.Errorf("unknown project %q (give --project, one of the configuration's ids)", c.String("project"))
	}
	kind := promote.Kind(c.String("type"))
	target := c.String("target")
	if target == "" {
		return fmt.Errorf("give --target, the branch or tag name")
	}
	meta := overlay.Meta{Build: c.String("build"), Source: c.String("source")}
	if meta.Build == "" {
		meta.Build = "cli-" + time.Now().UTC().Format("20060102T150405Z")
	}
	if meta.Source == "" {
		meta.Source = fmt.Sprintf("%s %s", kind, target)
	}
	var edit clone.Edit
	if c.Bool("delete") {
		edit, err = overlay.DeleteQAOverlay(p, kind, target, meta)
	} else {
		edit, err = overlay.QAOverlay(p, kind, target, c.String("image"), meta)
	}
	if err != nil {
		return err
	}
	log := slog.New(slog.NewTextHandler(d.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	repo, err := openConfigRepo(c.Context, cfg, promote.SecretsFromEnv(d.getenv), log, nil, nil)
	if err != nil {
		return err
	}
	res, err := repo.Apply(c.Context, edit)
	if cerr := repo.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	status := "unchanged"
	if res.Changed {
		status = "commit " + res.Commit
	}
	env, url := overlay.Landed(p, kind, res.Trailers)
	if c.Bool("delete") {
		url = "" // a removed environment has no URL
	}
	_, err = fmt.Fprintf(d.stdout, "%s %s %s\n", env, url, status)
	return err
}
