// Package promote is promotebot's domain: the typed configuration, builds and
// their environments, approvals and the policy that gates production, and the
// small interfaces the domain consumes. It imports no git, GitHub or Slack
// client; cmd/promotebot wires those in.
package promote
