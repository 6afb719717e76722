package main

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/forge"
	"github.com/promotebot/promotebot/promote"
)

// openConfigRepo opens the bot's persistent clone of the config repository
// (in dataDir/config-repo.git) with the credentials from the environment.
// observePush, when set, is told how long each push took; token, when set,
// gives the https password at each push and fetch (a GitHub App's
// installation token) unless PROMOTEBOT_GIT_PASSWORD is set.
func openConfigRepo(ctx context.Context, cfg *promote.Config, sec promote.Secrets, log *slog.Logger,
	observePush func(time.Duration), app *forge.AppTokens) (*clone.Repo, error) {
	opts := clone.Options{
		URL:    cfg.GitOps.Repo,
		Branch: cfg.GitOps.Branch,
		Dir:    filepath.Join(cfg.DataDir, "config-repo.git"),
		Auth: clone.Auth{
			Username:       sec.GitUsername,
			Password:       sec.GitPassword,
			SSHKeyFile:     cfg.GitOps.SSHKeyFile,
			SSHPassphrase:  sec.GitSSHPassphrase,
			KnownHostsFile: cfg.GitOps.KnownHostsFile,
		},
		Author:      clone.Signature{Name: cfg.GitOps.AuthorName, Email: cfg.GitOps.AuthorEmail},
		Logger:      log,
		ObservePush: observePush,
	}
	if app != nil && sec.GitPassword == "" {
		opts.Auth.Token, opts.Auth.Forget = app.Token, app.Forget
	}
	if cfg.GitOps.SigningKeyFile != "" {
		key, err := clone.LoadSigningKey(cfg.GitOps.SigningKeyFile, sec.GitSigningPassphrase)
		if err != nil {
			return nil, err
		}
		opts.SignKey = key
	}
	repo, err := clone.Open(ctx, opts)
	if err != nil {
		return nil, fmt.Errorf("config repo %s: %w", clone.RedactURL(cfg.GitOps.Repo), err)
	}
	return repo, nil
}
