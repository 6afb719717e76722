package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/promote"
)

var exampleConfig = filepath.Join("..", "..", "examples", "config.yaml")

// runWith runs the command line with only env as its environment.
func runWith(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	var out, errOut bytes.Buffer
	getenv := func(k string) string { return env[k] }
	err = run(context.Background(), append([]string{"promotebot"}, args...), getenv, &out, &errOut)
	return out.String(), errOut.String(), err
}

func TestHelpListsSubcommands(t *testing.T) {
	stdout, _, err := runWith(t, nil, "--help")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"COMMANDS:", "validate", "qa", "PROMOTEBOT_<FLAG>"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("help does not mention %q:\n%s", want, stdout)
		}
	}
}

func TestValidateExample(t *testing.T) {
	stdout, _, err := runWith(t, nil, "validate", "--config", exampleConfig)
	if err != nil {
		t.Fatal(err)
	}
	if stdout != "config OK: 1 project (hello)\n" {
		t.Errorf("got %q", stdout)
	}
}

func TestValidateConfigFromEnv(t *testing.T) {
	stdout, _, err := runWith(t, map[string]string{"PROMOTEBOT_CONFIG": exampleConfig}, "validate")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "config OK: ") {
		t.Errorf("got %q", stdout)
	}
}

func TestFlagWinsOverEnv(t *testing.T) {
	env := map[string]string{"PROMOTEBOT_CONFIG": filepath.Join(t.TempDir(), "missing.yaml")}
	if _, _, err := runWith(t, env, "validate", "--config", exampleConfig); err != nil {
		t.Fatalf("--config did not override PROMOTEBOT_CONFIG: %v", err)
	}
}

func TestValidateBrokenConfig(t *testing.T) {
	path := filepath.Join(t.TempDir(), "config.yaml")
	doc := `gitops:
  repo: https://git.example.com/acme/deploy-config.git
projects:
- id: Hello
  url: https://hello.example.com
  channel: C0HELLO
  owners: [UOWN1]
  image: registry.example.com/acme/hello:1.0
  path: apps/hello
  requiredApprovals: 0
  colour: blue
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runWith(t, nil, "validate", "--config", path)
	if err == nil {
		t.Fatalf("validate succeeded on a broken config: %q", stdout)
	}
	var ce *promote.ConfigError
	if !errors.As(err, &ce) {
		t.Fatalf("error %v is not a *promote.ConfigError", err)
	}
	for _, want := range []string{
		path + `:4: projects[0].id: "Hello" must be lower-case letters`,
		path + ":8: projects[0].image: ",
		path + ":11: projects[0].colour: unknown key",
	} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error does not contain %q:\n%v", want, err)
		}
	}
	if stdout != "" {
		t.Errorf("validate printed %q for a broken config", stdout)
	}
}

func TestValidateWithoutConfig(t *testing.T) {
	_, _, err := runWith(t, nil, "validate")
	if err == nil || !strings.Contains(err.Error(), "PROMOTEBOT_CONFIG") {
		t.Fatalf("got %v, want an error naming --config and PROMOTEBOT_CONFIG", err)
	}
}

func TestUnknownCommand(t *testing.T) {
	if _, _, err := runWith(t, nil, "valdate"); err == nil {
		t.Fatal("an unknown command succeeded")
	}
}

// TestEveryFlagNamesItsVariable guards bindEnv and mentionEnv for flags that
// later subcommands add.
func TestEveryFlagNamesItsVariable(t *testing.T) {
	app := newApp(deps{getenv: func(string) string { return "" }, stdout: &bytes.Buffer{}, stderr: &bytes.Buffer{}})
	for _, cmd := range app.Commands {
		for _, f := range cmd.Flags {
			df, ok := f.(cli.DocGenerationFlag)
			if !ok {
				t.Errorf("%s --%s: cannot read its usage", cmd.Name, f.Names()[0])
				continue
			}
			if want := "$" + envName(f.Names()[0]); !strings.Contains(df.GetUsage(), want) {
				t.Errorf("%s --%s: usage %q does not name %s", cmd.Name, f.Names()[0], df.GetUsage(), want)
			}
		}
	}
}

// TestValidateManyProjects: a configuration of thousands of projects is
// summed up, not listed in full.
func TestValidateManyProjects(t *testing.T) {
	var b strings.Builder
	b.WriteString("gitops:\n  repo: /srv/config.git\nprojects:\n")
	for i := range 25 {
		fmt.Fprintf(&b, "- {id: app-%02d, url: 'https://app-%02d.example.com', channel: C0APP, owners: [UOWN1], "+
			"image: registry.example.com/acme/app-%02d, path: apps/app-%02d, requiredApprovals: 0}\n", i, i, i, i)
	}
	config := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(config, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	stdout, _, err := runWith(t, nil, "validate", "--config", config)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(stdout, "config OK: 25 projects (app-00, app-01,") || !strings.HasSuffix(stdout, "app-19, … and 5 more)\n") {
		t.Errorf("got %q", stdout)
	}
}
