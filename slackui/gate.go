package slackui

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/slack-go/slack"

	"github.com/promotebot/promotebot/promote"
)

// Gate is what the server asks of a request to /slack/interactions or
// /slack/commands before its body is read (promote.Gate): at most 1 MiB,
// and Slack's signature and timestamp headers present, well formed and
// within 5 minutes of the server's clock; the signature is then checked
// over the raw body.
func Gate(secret string) promote.Gate {
	return promote.Gate{
		MaxBody: maxSlackBody,
		Headers: func(h http.Header) (bool, error) { return false, checkHeaders(h, secret) },
		Verify:  func(h http.Header, body []byte) error { return Verify(h, body, secret) },
	}
}

// checkHeaders refuses, without the body, a request whose signature could
// not be valid: no secret, Slack's headers missing or malformed, or a
// timestamp more than 5 minutes away.
func checkHeaders(h http.Header, secret string) error {
	if secret == "" {
		return errors.New("no Slack signing secret is configured")
	}
	if _, err := slack.NewSecretsVerifier(h, secret); err != nil {
		return fmt.Errorf("slack signature: %w", err)
	}
	return nil
}
