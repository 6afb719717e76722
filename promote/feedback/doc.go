// Package feedback takes in what Argo CD and Flux report of the config
// repository they reconcile, and hands it to the domain as
// promote.ClusterEvent values (docs/contracts.md, Cluster feedback).
//
// Three ways in, one domain port (promote.Observer):
//
//   - Flux serves POST /v1/events/flux: notification-controller's
//     generic-hmac provider, the event JSON signed with the events secret
//     (X-Signature: sha256=<hex HMAC-SHA256 of the raw body>).
//   - ArgoCD serves POST /v1/events/argocd: Argo CD Notifications' webhook
//     service "promotebot", authenticated with Authorization: Bearer
//     <events secret>, its body rendered from the templates of
//     examples/argocd/notifications.yaml.
//   - Poller reads Argo CD's REST API (GET /api/v1/applications) while a
//     rollout is pending, for setups that cannot send webhooks.
//
// The two Argo CD paths read an Application the same way (appState), so a
// polled Application and a notification about it give the same event.
//
// The handlers answer 200 for an event they understood or ignored (an
// object the bot does not follow, a revision that is not a git commit),
// 401 for a bad credential (nothing read beyond the headers, or nothing
// decoded beyond the signature check), 400 for a body that is not an
// event, 413 for one over the limit, and 500 when the domain failed. Each
// also offers the promote.Gate that the server puts in front of it; the
// handlers check the credential again themselves, so that one used without
// its gate is not open.
package feedback
