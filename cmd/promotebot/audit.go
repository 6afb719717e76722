package main

import (
	"bufio"
	"context"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/urfave/cli/v2"

	"github.com/promotebot/promotebot/gitops/clone"
	"github.com/promotebot/promotebot/gitops/history"
	"github.com/promotebot/promotebot/gitops/trailer"
	"github.com/promotebot/promotebot/promote"
)

func auditCommand(d deps) *cli.Command {
	return &cli.Command{
		Name:      "audit",
		Usage:     "list who approved and promoted what, from the config repository's history",
		ArgsUsage: " ",
		Description: "audit reads the first-parent history of the config branch (no database needed) and lists every " +
			"change promotebot made, with its trailers, and every production change someone made without them: a " +
			"commit changes a project's production when its production overlay renders differently, whatever files " +
			"changed and whatever its message says; a rollback (Promotebot-Rollback-Of) shows \"rollback of <build>\" as its " +
			"source, the teardown of a QA environment (Promotebot-Teardown) \"teardown: <reason>\". --check lists the " +
			"changes that break the rules instead and exits with status 1 when there is any; --verify checks each " +
			"commit's OpenPGP signature against --keyring. --dora prints the DORA figures of production instead (deploys " +
			"a week, lead time, change failure rate, time to restore), per project and overall; --format html writes one " +
			"self-contained page with the changes, a timeline of production, the DORA figures and the findings. A remote repository is " +
			"cloned into a temporary directory; its credentials come from PROMOTEBOT_GIT_USERNAME and " +
			"PROMOTEBOT_GIT_PASSWORD (or gitops.sshKeyFile and PROMOTEBOT_GIT_SSH_PASSPHRASE).",
		Flags: []cli.Flag{
			configFlag(),
			&cli.StringFlag{Name: "repo", Usage: "config repository `PATH_OR_URL` (default: gitops.repo of --config)"},
			&cli.StringFlag{Name: "branch", Usage: "`BRANCH` to read (default: gitops.branch of --config, else main)"},
			&cli.StringFlag{Name: "project", Usage: "only the project `ID`"},
			&cli.StringFlag{Name: "env", Usage: "only the environment `ENV`: production, qa/<env>, or qa for every QA environment"},
			&cli.StringFlag{Name: "since", Usage: "only changes committed at or after `TIME` (RFC 3339, or YYYY-MM-DD in UTC)"},
			&cli.StringFlag{Name: "until", Usage: "only changes committed at or before `TIME` (RFC 3339, or YYYY-MM-DD: that whole day, UTC)"},
			&cli.StringFlag{Name: "format", Value: "table", Usage: "output `FORMAT`: table, json (one object per line), csv, " +
				"or html: one self-contained page with the changes, a timeline of production, the DORA figures and --check's findings"},
			&cli.BoolFlag{Name: "dora", Usage: "print the DORA figures of production per project and overall over " +
				"--since/--until (default: from the first deploy to now), as a table or json, instead of the changes"},
			&cli.BoolFlag{Name: "wide", Usage: "table: every field in full and the CI link, however wide the lines get (json always has them)"},
			&cli.BoolFlag{Name: "verify", Usage: "check each commit's OpenPGP signature against --keyring"},
			&cli.StringFlag{Name: "keyring", Usage: "armored OpenPGP public keys `FILE` for --verify", TakesFile: true},
			&cli.BoolFlag{Name: "check", Usage: "list the production changes that break the rules; exit status 1 when any does"},
		},
		Action: func(c *cli.Context) error { return runAudit(c, d) },
	}
}

// usageError is a mistake on the command line: exit status 2 once main
// honours cli.ExitCoder.
func usageError(format string, args ...any) error {
	return cli.Exit(fmt.Sprintf(format, args...), 2)
}

// auditRun is what the command line asked for, checked.
type auditRun struct {
	src, format, configName string
	cfg                     *promote.Config
	opts                    history.Options
	check, wide, dora       bool
}

func runAudit(c *cli.Context, d deps) error {
	a, err := parseAudit(c, d)
	if err != nil {
		return err
	}
	switch {
	case a.dora:
		return runAuditDORA(c, d, a)
	case a.format == "html":
		return runAuditReport(c, d, a)
	case a.check:
		return runAuditCheck(c, d, a)
	}
	if a.opts.KeyRing == "" && (a.format == "json" || a.format == "csv") {
		return streamChanges(c.Context, d.stdout, a)
	}
	changes, err := history.Read(c.Context, a.src, a.opts)
	if err != nil {
		return err
	}
	if a.opts.KeyRing != "" {
		if _, err := fmt.Fprintln(d.stderr, signatureSummary(changes)); err != nil {
			return err
		}
	}
	return writeChanges(d.stdout, a.format, changes, a.opts.KeyRing != "", a.wide)
}

func runAuditCheck(c *cli.Context, d deps, a *auditRun) error {
	// Every change before the ones checked is history they are checked
	// against (an image's earlier QA deployments), whatever the filters.
	all := a.opts
	all.Env, all.Since = "", time.Time{}
	changes, err := history.Read(c.Context, a.src, all)
	if err != nil {
		return err
	}
	opts, notes := a.checkOptions(changes)
	for _, note := range notes {
		if _, err := fmt.Fprintln(d.stderr, "note:", note); err != nil {
			return err
		}
	}
	findings := history.Check(changes, opts)
	if err := writeFindings(d.stdout, a.format, findings); err != nil {
		return err
	}
	checked := 0
	for _, ch := range changes {
		if ch.Environment == trailer.Production && !ch.Root && a.opts.Matches(ch) {
			checked++
		}
	}
	if len(findings) > 0 {
		return cli.Exit(fmt.Sprintf("audit: %d finding(s) in %d production change(s) checked", len(findings), checked), 1)
	}
	_, err = fmt.Fprintf(d.stderr, "audit: no findings in %d production change(s) checked\n", checked)
	return err
}

func parseAudit(c *cli.Context, d deps) (*auditRun, error) {
	a := &auditRun{src: c.String("repo"), format: c.String("format"), check: c.Bool("check"), wide: c.Bool("wide"),
		dora: c.Bool("dora")}
	switch a.format {
	case "table", "json", "csv", "html":
	default:
		return nil, usageError("--format %q: want table, json, csv or html", a.format)
	}
	if a.dora {
		if err := checkDORA(c, a); err != nil {
			return nil, err
		}
	}
	var err error
	if a.opts.Since, err = parseAuditTime(c.String("since"), false); err != nil {
		return nil, usageError("--since: %v", err)
	}
	if a.opts.Until, err = parseAuditTime(c.String("until"), true); err != nil {
		return nil, usageError("--until: %v", err)
	}
	if !a.opts.Since.IsZero() && !a.opts.Until.IsZero() && a.opts.Until.Before(a.opts.Since) {
		return nil, usageError("--until %s is before --since %s", c.String("until"), c.String("since"))
	}
	a.opts.Project, a.opts.Env = c.String("project"), c.String("env")
	if env := a.opts.Env; env != "" && env != trailer.Production && env != "qa" && !strings.HasPrefix(env, "qa/") {
		return nil, usageError("--env %q: want production, qa or qa/<env>", env)
	}
	if c.Bool("verify") != (c.String("keyring") != "") {
		return nil, usageError("--verify and --keyring FILE go together")
	}
	if file := c.String("keyring"); file != "" {
		data, err := os.ReadFile(file)
		if err != nil {
			return nil, fmt.Errorf("--keyring: %w", err)
		}
		a.opts.KeyRing = string(data)
	}
	if path := c.String("config"); path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("read config: %w", err)
		}
		// Not LoadConfig: an auditor may hold the configuration without
		// the bot's key files.
		if a.cfg, err = promote.ParseConfig(path, data); err != nil {
			return nil, err
		}
		a.configName = path
	}
	sec := promote.SecretsFromEnv(d.getenv)
	a.opts.Auth = clone.Auth{Username: sec.GitUsername, Password: sec.GitPassword, SSHPassphrase: sec.GitSSHPassphrase}
	a.opts.Branch = c.String("branch")
	if a.cfg != nil {
		if a.src == "" {
			a.src = a.cfg.GitOps.Repo
		}
		if a.opts.Branch == "" {
			a.opts.Branch = a.cfg.GitOps.Branch
		}
		a.opts.Auth.SSHKeyFile, a.opts.Auth.KnownHostsFile = a.cfg.GitOps.SSHKeyFile, a.cfg.GitOps.KnownHostsFile
		a.opts.ProjectPaths = map[string]string{}
		for _, p := range a.cfg.Projects {
			a.opts.ProjectPaths[p.Path] = p.ID
		}
	}
	if a.src == "" {
		return nil, usageError("no config repository: give --repo PATH_OR_URL or --config FILE (or set %s or %s)",
			envName("repo"), envName("config"))
	}
	return a, nil
}

// parseAuditTime reads RFC 3339 or a date (UTC). A date as an upper bound
// means the end of that day.
func parseAuditTime(s string, endOfDay bool) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.DateOnly, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither RFC 3339 (2026-01-02T15:04:05Z) nor a date (2026-01-02)", s)
	}
	if endOfDay {
		t = t.Add(24*time.Hour - time.Nanosecond)
	}
	return t, nil
}

// checkOptions returns the rules' settings, and notes saying where the
// required approvals came from and which rule cannot be checked.
func (a *auditRun) checkOptions(changes []history.Change) (history.CheckOptions, []string) {
	o := history.CheckOptions{DefaultApprovals: promote.DefaultRequiredApprovals, Only: a.opts.Matches}
	var notes []string
	if a.cfg == nil {
		notes = append(notes, fmt.Sprintf("no --config: %d required approval(s) assumed where a commit does not "+
			"record its policy (Promotebot-Required-Approvals)", promote.DefaultRequiredApprovals))
	} else {
		o.RequiredApprovals = map[string]int{}
		for _, p := range a.cfg.Projects {
			o.RequiredApprovals[p.ID] = p.RequiredApprovals
		}
		notes = append(notes, fmt.Sprintf("required approvals: the stricter of what each commit recorded "+
			"(Promotebot-Required-Approvals) and the project's requiredApprovals in %s as it is now", a.configName))
		unknown := map[string]bool{}
		for _, c := range changes {
			if _, ok := o.RequiredApprovals[c.Project]; !ok && c.Trailers && !c.Root &&
				c.Environment == trailer.Production && a.opts.Matches(c) {
				unknown[c.Project] = true
			}
		}
		for _, id := range sortedKeys(unknown) {
			notes = append(notes, fmt.Sprintf("project %q is not in %s: %d required approval(s) assumed",
				id, a.configName, promote.DefaultRequiredApprovals))
		}
	}
	return o, append(notes, "an approver who wrote the build is found by Promotebot-Author (Slack id or name); "+
		"an author CI gave only as an e-mail cannot be matched")
}

func sortedKeys(m map[string]bool) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

func signatureSummary(changes []history.Change) string {
	good, none, bad := 0, 0, 0
	for _, c := range changes {
		switch {
		case c.Signature == "none":
			none++
		case c.Signature == "bad":
			bad++
		default:
			good++
		}
	}
	return fmt.Sprintf("signatures: %d good, %d unsigned, %d bad", good, none, bad)
}

// writeChanges prints the history in format, newest first.
func writeChanges(w io.Writer, format string, changes []history.Change, verified, wide bool) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, c := range changes {
			if err := enc.Encode(stableJSON(c)); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		for _, c := range changes {
			if err := cw.Write(csvRecord(c)); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	return writeChangesTable(w, changes, verified, wide)
}

// streamChanges prints the history as json or csv as history.Walk finds
// it, newest first, as writeChanges would, holding no more than one change.
func streamChanges(ctx context.Context, out io.Writer, a *auditRun) error {
	w := bufio.NewWriterSize(out, 64<<10)
	var write func(history.Change) error
	var cw *csv.Writer
	switch a.format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		write = func(c history.Change) error { return enc.Encode(stableJSON(c)) }
	default:
		cw = csv.NewWriter(w)
		if err := cw.Write(csvHeader); err != nil {
			return err
		}
		write = func(c history.Change) error { return cw.Write(csvRecord(c)) }
	}
	err := history.Walk(ctx, a.src, a.opts, write)
	if cw != nil {
		cw.Flush()
		err = errors.Join(err, cw.Error())
	}
	return errors.Join(err, w.Flush())
}

// stableJSON gives every list field a value, so that each object has the
// same fields: [] rather than null.
func stableJSON(c history.Change) history.Change {
	if c.Approvals == nil {
		c.Approvals = []history.ApprovedBy{}
	}
	if c.Paths == nil {
		c.Paths = []string{}
	}
	if c.Malformed == nil {
		c.Malformed = []string{}
	}
	return c
}

var csvHeader = []string{"commit", "time", "project", "environment", "image", "build", "source", "approvals",
	"promotedBy", "pr", "author", "committer", "subject", "signed", "signature", "trailers", "botMade", "paths", "malformed",
	"claims", "beyondMerged", "qaPinned", "rollbackOf", "reason", "rollbackPinned", "teardown", "teardownRemoved", "builtAt",
	"receivedAt"}

func csvRecord(c history.Change) []string {
	approvals := make([]string, len(c.Approvals))
	for i, a := range c.Approvals {
		approvals[i] = trailer.Person(a.Name, a.SlackID) + " " + a.At.Format(time.RFC3339)
	}
	rec := []string{c.Commit, c.Time.Format(time.RFC3339), c.Project, c.Environment, c.Image, c.Build, c.Source,
		strings.Join(approvals, "; "), c.PromotedBy.String(), c.PR, c.Author, c.Committer, c.Subject,
		strconv.FormatBool(c.Signed), c.Signature, strconv.FormatBool(c.Trailers), strconv.FormatBool(c.BotMade),
		strings.Join(c.Paths, " "), strings.Join(c.Malformed, "; "), c.Claims, c.BeyondMerged, strconv.FormatBool(c.QAPinned),
		c.RollbackOf, c.Reason, strconv.FormatBool(c.RollbackPinned), c.Teardown, strconv.FormatBool(c.TeardownRemoved),
		optionalTime(c.BuiltAt), optionalTime(c.ReceivedAt)}
	for i, v := range rec {
		rec[i] = csvCell(v)
	}
	return rec
}

// optionalTime is an optional time in RFC 3339, "" for none.
func optionalTime(t *time.Time) string {
	if t == nil {
		return ""
	}
	return t.Format(time.RFC3339)
}

// writeFindings prints the findings in format, newest first.
func writeFindings(w io.Writer, format string, findings []history.Finding) error {
	switch format {
	case "json":
		enc := json.NewEncoder(w)
		enc.SetEscapeHTML(false)
		for _, f := range findings {
			if err := enc.Encode(f); err != nil {
				return err
			}
		}
		return nil
	case "csv":
		cw := csv.NewWriter(w)
		if err := cw.Write([]string{"commit", "time", "project", "environment", "rule", "detail"}); err != nil {
			return err
		}
		for _, f := range findings {
			rec := []string{f.Commit, f.Time.Format(time.RFC3339), f.Project, f.Environment, f.Rule, f.Detail}
			for i, v := range rec {
				rec[i] = csvCell(v)
			}
			if err := cw.Write(rec); err != nil {
				return err
			}
		}
		cw.Flush()
		return cw.Error()
	}
	if len(findings) == 0 {
		return nil
	}
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "TIME\tPROJECT\tENV\tCOMMIT\tRULE\tDETAIL")
	for _, f := range findings {
		writeRow(tw, []string{f.Time.Format(time.RFC3339), f.Project, f.Environment, f.Commit[:min(12, len(f.Commit))],
			f.Rule, f.Detail})
	}
	return tw.Flush()
}

// writeRow writes one table row of tableCells.
func writeRow(w io.Writer, cells []string) {
	for i, v := range cells {
		cells[i] = tableCell(v)
	}
	fmt.Fprintln(w, strings.Join(cells, "\t"))
}

// cleanText replaces control and format characters (escape sequences, tabs,
// bidirectional overrides) with "?".
func cleanText(s string) string {
	return strings.Map(func(r rune) rune {
		if unicode.IsControl(r) || unicode.Is(unicode.Cf, r) {
			return '?'
		}
		return r
	}, s)
}

// csvCell cleans a value and keeps a spreadsheet from taking it for a
// formula.
func csvCell(s string) string {
	s = cleanText(s)
	if s != "" && strings.ContainsRune("=+-@", rune(s[0])) {
		return "'" + s
	}
	return s
}
