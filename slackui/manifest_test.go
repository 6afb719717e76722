package slackui

import (
	"net/url"
	"os"
	"slices"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestAppManifest keeps examples/slack-app-manifest.yaml in step with the
// routes and the Web API methods the bot uses.
func TestAppManifest(t *testing.T) {
	raw, err := os.ReadFile("../examples/slack-app-manifest.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Features struct {
			SlashCommands []struct {
				Command string `yaml:"command"`
				URL     string `yaml:"url"`
			} `yaml:"slash_commands"`
		} `yaml:"features"`
		OAuth struct {
			Scopes struct {
				Bot []string `yaml:"bot"`
			} `yaml:"scopes"`
		} `yaml:"oauth_config"`
		Settings struct {
			Interactivity struct {
				Enabled    bool   `yaml:"is_enabled"`
				RequestURL string `yaml:"request_url"`
			} `yaml:"interactivity"`
		} `yaml:"settings"`
	}
	if err := yaml.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	path := func(u string) string {
		p, err := url.Parse(u)
		if err != nil {
			t.Fatalf("%s: %v", u, err)
		}
		return p.Path
	}
	if len(m.Features.SlashCommands) != 1 || m.Features.SlashCommands[0].Command != "/promote" ||
		path(m.Features.SlashCommands[0].URL) != "/slack/commands" {
		t.Errorf("slash commands: %+v", m.Features.SlashCommands)
	}
	if !m.Settings.Interactivity.Enabled || path(m.Settings.Interactivity.RequestURL) != "/slack/interactions" {
		t.Errorf("interactivity: %+v", m.Settings.Interactivity)
	}
	// chat.postMessage/update/postEphemeral, conversations.open, users.info
	// (with e-mail), usergroups.users.list, the slash command.
	for _, scope := range []string{"chat:write", "im:write", "users:read", "users:read.email", "usergroups:read", "commands"} {
		if !slices.Contains(m.OAuth.Scopes.Bot, scope) {
			t.Errorf("bot scopes %v lack %s", m.OAuth.Scopes.Bot, scope)
		}
	}
}
