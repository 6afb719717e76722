package promote

import (
	"bytes"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestSecretsFromEnv(t *testing.T) {
	env := map[string]string{
		"PROMOTEBOT_WEBHOOK_SECRET":         "v-webhook",
		"PROMOTEBOT_SLACK_BOT_TOKEN":        "v-bot",
		"PROMOTEBOT_SLACK_SIGNING_SECRET":   "v-signing",
		"PROMOTEBOT_GITHUB_TOKEN":           "v-github",
		"PROMOTEBOT_GIT_USERNAME":           "v-user",
		"PROMOTEBOT_GIT_PASSWORD":           "v-password",
		"PROMOTEBOT_GIT_SSH_PASSPHRASE":     "v-ssh",
		"PROMOTEBOT_GIT_SIGNING_PASSPHRASE": "v-gpg",
	}
	got := SecretsFromEnv(func(k string) string { return env[k] })
	want := Secrets{
		WebhookSecret: "v-webhook", SlackBotToken: "v-bot", SlackSigningSecret: "v-signing",
		GitHubToken: "v-github", GitUsername: "v-user", GitPassword: "v-password",
		GitSSHPassphrase: "v-ssh", GitSigningPassphrase: "v-gpg",
	}
	if got != want {
		// Compare field by field: printing a Secrets hides the values.
		t.Errorf("SecretsFromEnv read the wrong variables")
	}
	if empty := SecretsFromEnv(func(string) string { return "" }); empty != (Secrets{}) {
		t.Error("SecretsFromEnv with no variables set is not empty")
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	s := Secrets{WebhookSecret: "hunter2-webhook", GitPassword: "hunter2-password"}
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("start", "secrets", s)
	slog.New(slog.NewTextHandler(&logged, nil)).Info("start", "secrets", s)
	js, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	outputs := map[string]string{
		"%v":  fmt.Sprintf("%v", s),
		"%+v": fmt.Sprintf("%+v", s),
		"%#v": fmt.Sprintf("%#v", s),
		//lint:ignore S1025 the test is of what each verb prints, %s included
		"%s":   fmt.Sprintf("%s", s),
		"&%v":  fmt.Sprintf("%v", &s),
		"slog": logged.String(),
		"json": string(js),
	}
	for name, out := range outputs {
		if strings.Contains(out, "hunter2") {
			t.Errorf("%s prints a secret: %s", name, out)
		}
	}
	if want := "Secrets{WebhookSecret:set SlackBotToken:unset"; !strings.HasPrefix(outputs["%v"], want) {
		t.Errorf("String() = %q, want it to start with %q", outputs["%v"], want)
	}
	if !strings.Contains(outputs["slog"], `"WebhookSecret":true`) || !strings.Contains(outputs["slog"], "secrets.GitPassword=true") {
		t.Errorf("slog output does not say which secrets are set: %s", outputs["slog"])
	}
	if !strings.Contains(outputs["json"], `"GitPassword":true`) {
		t.Errorf("JSON does not say which secrets are set: %s", outputs["json"])
	}
}
