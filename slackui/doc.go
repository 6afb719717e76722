// Package slackui is promotebot's Slack side: Block Kit builders (pure
// functions of a build's view), the handlers of Slack's interactions and
// the /promote command (signature verified on the raw body first), the
// promote.Notifier and promote.Directory on Slack's Web API, and Socket
// Mode for a bot without a public Request URL. slacktest and localslack,
// both on fakeslack, stand in for Slack in tests and in the quickstart.
package slackui
