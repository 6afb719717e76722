// Package remoteurl is what the bench programs share about the remotes they
// are given.
package remoteurl

import (
	"net/url"

	"github.com/promotebot/promotebot/gitops/clone"
)

// Split splits the credentials off an http(s) remote such as the one
// bench/serve prints (http://user:password@host/config.git): the bot takes
// them as clone.Auth, as serve takes them from the environment, never in
// the URL. Anything else (a path) is returned as it is.
func Split(remote string) (string, clone.Auth) {
	u, err := url.Parse(remote)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User == nil {
		return remote, clone.Auth{}
	}
	password, _ := u.User.Password()
	auth := clone.Auth{Username: u.User.Username(), Password: password}
	u.User = nil
	return u.String(), auth
}
