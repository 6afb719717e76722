// Command serve serves bare git repositories over smart HTTP (git's own
// git-http-backend, through gittest's server, behind HTTP Basic auth), so
// that the benchmarks push to a remote the way the bot does in production.
//
//	go run ./bench/serve -root DIR
//
// It serves every bare repository directly below DIR and prints one line,
//
//	url=http://bench:bench-secret@127.0.0.1:PORT
//
// the base URL with the credentials in it: a repository's URL is that plus
// "/" and its directory name (such as /config.git). It serves until it is
// sent SIGINT or SIGTERM. Every request runs one git-http-backend process.
package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/signal"
	"syscall"

	"github.com/promotebot/promotebot/gitops/gittest"
)

const user, password = "bench", "bench-secret"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "serve:", err)
		os.Exit(1)
	}
}

func run() error {
	root := flag.String("root", "", "directory holding the bare repositories to serve")
	flag.Parse()
	if *root == "" {
		return errors.New("-root is required")
	}
	if _, err := os.Stat(*root); err != nil {
		return err
	}
	srv, err := gittest.StartServer(*root, user, password)
	if err != nil {
		return err
	}
	defer srv.Close()
	u, err := url.Parse(srv.URL)
	if err != nil {
		return err
	}
	u.User = url.UserPassword(user, password)
	fmt.Printf("url=%s\n", u)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	<-sig
	if s := srv.Stderr(); s != "" {
		fmt.Fprint(os.Stderr, s)
	}
	return nil
}
