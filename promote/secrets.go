package promote

import (
	"encoding/json"
	"log/slog"
	"strings"
)

// Secrets are the credentials promotebot needs. They come from the
// environment only, never from the configuration file. Every way of printing
// a Secrets (fmt verbs, slog, JSON) shows which are set, never their values.
type Secrets struct {
	// WebhookSecret authenticates CI's calls to the build webhook.
	WebhookSecret string
	// SlackBotToken is the bot's xoxb- token.
	SlackBotToken string
	// SlackSigningSecret verifies requests from Slack.
	SlackSigningSecret string
	// SlackAppToken (xapp-…) turns on Socket Mode: Slack's clicks and
	// commands arrive over a websocket instead of the public Request URL.
	SlackAppToken string
	// GitHubToken opens and merges pull requests.
	GitHubToken string
	// GitHubWebhookSecret verifies GitHub's webhook deliveries.
	GitHubWebhookSecret string
	// EventsSecret authenticates Argo CD's and Flux's cluster events.
	EventsSecret string
	// ArgoCDToken reads applications from Argo CD's API (argocd.apiURL).
	ArgoCDToken string
	// GitUsername and GitPassword authenticate to an https config repository.
	GitUsername string
	GitPassword string
	// GitSSHPassphrase decrypts gitops.sshKeyFile.
	GitSSHPassphrase string
	// GitSigningPassphrase decrypts gitops.signingKeyFile.
	GitSigningPassphrase string
}

type secretField struct {
	name, env string
	value     *string
}

// fields lists each secret with its environment variable; the one table that
// reading and printing share.
func (s *Secrets) fields() []secretField {
	return []secretField{
		{"WebhookSecret", "PROMOTEBOT_WEBHOOK_SECRET", &s.WebhookSecret},
		{"SlackBotToken", "PROMOTEBOT_SLACK_BOT_TOKEN", &s.SlackBotToken},
		{"SlackSigningSecret", "PROMOTEBOT_SLACK_SIGNING_SECRET", &s.SlackSigningSecret},
		{"SlackAppToken", "PROMOTEBOT_SLACK_APP_TOKEN", &s.SlackAppToken},
		{"GitHubToken", "PROMOTEBOT_GITHUB_TOKEN", &s.GitHubToken},
		{"GitHubWebhookSecret", "PROMOTEBOT_GITHUB_WEBHOOK_SECRET", &s.GitHubWebhookSecret},
		{"EventsSecret", "PROMOTEBOT_EVENTS_SECRET", &s.EventsSecret},
		{"ArgoCDToken", "PROMOTEBOT_ARGOCD_TOKEN", &s.ArgoCDToken},
		{"GitUsername", "PROMOTEBOT_GIT_USERNAME", &s.GitUsername},
		{"GitPassword", "PROMOTEBOT_GIT_PASSWORD", &s.GitPassword},
		{"GitSSHPassphrase", "PROMOTEBOT_GIT_SSH_PASSPHRASE", &s.GitSSHPassphrase},
		{"GitSigningPassphrase", "PROMOTEBOT_GIT_SIGNING_PASSPHRASE", &s.GitSigningPassphrase},
	}
}

// SecretsFromEnv reads every secret from its PROMOTEBOT_* variable through
// getenv (os.Getenv in production). Unset variables leave the secret empty.
func SecretsFromEnv(getenv func(string) string) Secrets {
	var s Secrets
	for _, f := range s.fields() {
		*f.value = getenv(f.env)
	}
	return s
}

// String lists which secrets are set, such as
// "Secrets{WebhookSecret:set SlackBotToken:unset …}".
func (s Secrets) String() string {
	var b strings.Builder
	b.WriteString("Secrets{")
	for i, f := range s.fields() {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(f.name)
		b.WriteString(":")
		b.WriteString(setOrUnset(*f.value))
	}
	b.WriteString("}")
	return b.String()
}

// GoString is String, so that %#v does not print values either.
func (s Secrets) GoString() string {
	return s.String()
}

// LogValue is a group telling, for each secret, whether it is set.
func (s Secrets) LogValue() slog.Value {
	fields := s.fields()
	attrs := make([]slog.Attr, 0, len(fields))
	for _, f := range fields {
		attrs = append(attrs, slog.Bool(f.name, *f.value != ""))
	}
	return slog.GroupValue(attrs...)
}

// MarshalJSON encodes, for each secret, whether it is set.
func (s Secrets) MarshalJSON() ([]byte, error) {
	m := map[string]bool{}
	for _, f := range s.fields() {
		m[f.name] = *f.value != ""
	}
	return json.Marshal(m)
}

func setOrUnset(v string) string {
	if v == "" {
		return "unset"
	}
	return "set"
}
