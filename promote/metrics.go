package promote

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The outcomes of a webhook call, the values of the outcome label of
// promotebot_webhook_requests_total.
const (
	outcomeAccepted         = "accepted"
	outcomeDuplicate        = "duplicate"
	outcomeUnauthorized     = "unauthorized"
	outcomeInvalid          = "invalid"
	outcomeUnknownProject   = "unknown_project"
	outcomeTooLarge         = "too_large"
	outcomeUnsupportedMedia = "unsupported_media"
	// outcomeBusy: every turn to read an unverified body was taken (Gate).
	outcomeBusy  = "busy"
	outcomeError = "error"
	// outcomeEnvironmentLimit: a new target past maxQAEnvironments (409).
	outcomeEnvironmentLimit = "environment_limit"
)

var webhookOutcomes = []string{
	outcomeAccepted, outcomeDuplicate, outcomeUnauthorized, outcomeInvalid,
	outcomeUnknownProject, outcomeTooLarge, outcomeUnsupportedMedia, outcomeBusy, outcomeError,
	outcomeEnvironmentLimit,
}

// scrapeTimeout bounds the store queries a scrape makes.
const scrapeTimeout = 5 * time.Second

// Metrics are promotebot's Prometheus metrics, on a registry of their own
// (served at /metrics) so that nothing registered globally by a library
// leaks in. A nil *Metrics records nothing.
type Metrics struct {
	reg      *prometheus.Registry
	webhooks *prometheus.CounterVec
	push     prometheus.Histogram
	rollouts *prometheus.HistogramVec
	events   *prometheus.CounterVec
}

// The outcomes of a cluster event refused before the domain saw it (the
// rest are Observation outcomes).
const (
	EventUnauthorized = "unauthorized"
	EventInvalid      = "invalid"
	EventError        = "error"
)

var (
	clusterEventSources  = []string{"flux", "argocd", "argocd-api"}
	clusterEventOutcomes = []string{
		OutcomeApplied, OutcomeRepeat, OutcomeStale, OutcomePending, OutcomeIgnored,
		EventUnauthorized, EventInvalid, EventError,
	}
)

// MetricsOption gives NewMetrics a source it reads at scrape time.
type MetricsOption func(*storeCollector)

// WithQueueDepth adds promotebot_queue_depth, the jobs not yet completed or
// failed, read from pending (Store.Pending fits).
func WithQueueDepth(pending func(context.Context) (int, error)) MetricsOption {
	return func(c *storeCollector) { c.queueDepth = pending }
}

// WithBuildsByState adds promotebot_builds{state}, the number of builds in
// each state, read from count; states it leaves out count 0.
func WithBuildsByState(count func(context.Context) (map[State]int, error)) MetricsOption {
	return func(c *storeCollector) { c.buildsByState = count }
}

// WithQAEnvironments adds promotebot_qa_environments{project}, the live QA
// environments of each of projects, counted by count (Store.CountEnvironments
// fits: "" counts every project's).
func WithQAEnvironments(projects []string, count func(ctx context.Context, project string) (map[string]int, error)) MetricsOption {
	return func(c *storeCollector) { c.projects, c.environments = projects, count }
}

// WithDORA adds the DORA gauges of each project, read from figures
// (Service.DORA fits: it caches them).
func WithDORA(figures func(context.Context) (map[string]DORA, error)) MetricsOption {
	return func(c *storeCollector) { c.dora = figures }
}

// NewMetrics makes promotebot's metrics:
//
//   - promotebot_webhook_requests_total{outcome}: CI webhook calls by outcome
//     (accepted, duplicate, unauthorized, invalid, unknown_project,
//     too_large, unsupported_media, error);
//   - promotebot_push_seconds: how long successful pushes to the config
//     repository take (see ObservePush);
//   - promotebot_rollout_seconds{env,result}: from a build's commit to the
//     first healthy or degraded report, per environment (qa, production);
//   - promotebot_cluster_events_total{source,outcome}: Argo CD and Flux
//     events (and Argo CD API answers) by what the bot made of them;
//   - the Go runtime and process collectors;
//   - the gauges of the options, read from the store at scrape time.
func NewMetrics(opts ...MetricsOption) *Metrics {
	sources := &storeCollector{}
	for _, o := range opts {
		o(sources)
	}
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		webhooks: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promotebot_webhook_requests_total",
			Help: "CI webhook calls (POST /v1/builds, POST /build-complete) by outcome.",
		}, []string{"outcome"}),
		push: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "promotebot_push_seconds",
			Help:    "Time taken by a push to the config repository.",
			Buckets: prometheus.ExponentialBuckets(0.005, 2, 12), // 5 ms … 10 s
		}),
		rollouts: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "promotebot_rollout_seconds",
			Help:    "Time from a build's commit to its first healthy or degraded report, by environment and result.",
			Buckets: prometheus.ExponentialBuckets(5, 2, 10), // 5 s … 43 min
		}, []string{"env", "result"}),
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "promotebot_cluster_events_total",
			Help: "Cluster events from Argo CD and Flux by source and outcome.",
		}, []string{"source", "outcome"}),
	}
	for _, src := range clusterEventSources {
		for _, o := range clusterEventOutcomes {
			m.events.WithLabelValues(src, o)
		}
	}
	// Every outcome is there from the start, so that rates and alerts do not
	// see a series appear out of nothing.
	for _, o := range webhookOutcomes {
		m.webhooks.WithLabelValues(o)
	}
	m.reg.MustRegister(
		m.webhooks,
		m.push,
		m.rollouts,
		m.events,
		sources,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return m
}

// ObservePush records how long a push to the config repository took.
func (m *Metrics) ObservePush(d time.Duration) {
	if m == nil {
		return
	}
	m.push.Observe(d.Seconds())
}

// ClusterEvent counts a cluster event from source with its outcome.
func (m *Metrics) ClusterEvent(source, outcome string) {
	if m == nil {
		return
	}
	m.events.WithLabelValues(source, outcome).Inc()
}

// rollout records how long a rollout took to its first result.
func (m *Metrics) rollout(env RolloutEnv, result RolloutStatus, d time.Duration) {
	if m == nil {
		return
	}
	m.rollouts.WithLabelValues(string(env), string(result)).Observe(d.Seconds())
}

// webhookRequest counts a webhook call with its outcome.
func (m *Metrics) webhookRequest(outcome string) {
	if m == nil {
		return
	}
	m.webhooks.WithLabelValues(outcome).Inc()
}

// handler serves the registry in the Prometheus formats. A failing store
// query is logged and leaves its metric out; the rest is still served.
func (m *Metrics) handler(log *slog.Logger) http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		ErrorLog:      slog.NewLogLogger(log.Handler(), slog.LevelWarn),
		ErrorHandling: promhttp.ContinueOnError,
		Registry:      m.reg,
	})
}

var (
	queueDepthDesc = prometheus.NewDesc("promotebot_queue_depth",
		"Jobs not yet completed or failed.", nil, nil)
	buildsDesc = prometheus.NewDesc("promotebot_builds",
		"Builds in each state.", []string{"state"}, nil)
	envsDesc = prometheus.NewDesc("promotebot_qa_environments",
		"Live QA environments of each project.", []string{"project"}, nil)
	doraDescs = struct{ deploys, perWeek, lead, failure, restore *prometheus.Desc }{
		prometheus.NewDesc("promotebot_dora_deployments",
			"Production changes (promotions and rollbacks) in the last 28 days.", []string{"project"}, nil),
		prometheus.NewDesc("promotebot_dora_deployments_per_week",
			"Deployment frequency: production deploys per week over the last 28 days.", []string{"project"}, nil),
		prometheus.NewDesc("promotebot_dora_lead_time_seconds",
			"Lead time for changes: median from CI's build (or its receipt) to production, last 28 days.", []string{"project"}, nil),
		prometheus.NewDesc("promotebot_dora_change_failure_ratio",
			"Change failure rate: the share of the last 28 days' promotions that were rolled back.", []string{"project"}, nil),
		prometheus.NewDesc("promotebot_dora_time_to_restore_seconds",
			"Time to restore: median from a promotion later rolled back to the next production change, last 28 days.", []string{"project"}, nil),
	}
)

// storeCollector asks the store at scrape time, so that the figures are those
// of the shared store, whichever replica is scraped.
type storeCollector struct {
	queueDepth    func(context.Context) (int, error)
	buildsByState func(context.Context) (map[State]int, error)
	projects      []string
	environments  func(context.Context, string) (map[string]int, error)
	dora          func(context.Context) (map[string]DORA, error)
}

// Describe sends the descriptions of the metrics that have a source.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	if c.queueDepth != nil {
		ch <- queueDepthDesc
	}
	if c.buildsByState != nil {
		ch <- buildsDesc
	}
	if c.environments != nil {
		ch <- envsDesc
	}
	if c.dora != nil {
		ch <- doraDescs.deploys
		ch <- doraDescs.perWeek
		ch <- doraDescs.lead
		ch <- doraDescs.failure
		ch <- doraDescs.restore
	}
}

// Collect queries the sources; a failure becomes an invalid metric, which
// the handler logs.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	if c.queueDepth != nil {
		n, err := c.queueDepth(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(queueDepthDesc, err)
		} else {
			ch <- prometheus.MustNewConstMetric(queueDepthDesc, prometheus.GaugeValue, float64(n))
		}
	}
	if c.environments != nil {
		c.collectEnvironments(ctx, ch)
	}
	if c.dora != nil {
		c.collectDORA(ctx, ch)
	}
	if c.buildsByState != nil {
		counts, err := c.buildsByState(ctx)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(buildsDesc, err)
			return
		}
		// Every state, zero included, so that each series is always there.
		for _, s := range States {
			ch <- prometheus.MustNewConstMetric(buildsDesc, prometheus.GaugeValue, float64(counts[s]), string(s))
		}
	}
}

// collectEnvironments counts the live QA environments of each project, one
// query for all, every configured project present (0 included).
func (c *storeCollector) collectEnvironments(ctx context.Context, ch chan<- prometheus.Metric) {
	counts, err := c.environments(ctx, "")
	if err != nil {
		ch <- prometheus.NewInvalidMetric(envsDesc, err)
		return
	}
	for _, p := range c.projects {
		ch <- prometheus.MustNewConstMetric(envsDesc, prometheus.GaugeValue, float64(counts[p]), p)
	}
}

// collectDORA reports each project's DORA figures.
func (c *storeCollector) collectDORA(ctx context.Context, ch chan<- prometheus.Metric) {
	figs, err := c.dora(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(doraDescs.deploys, err)
		return
	}
	for p, f := range figs {
		ch <- prometheus.MustNewConstMetric(doraDescs.deploys, prometheus.GaugeValue, float64(f.Deploys), p)
		ch <- prometheus.MustNewConstMetric(doraDescs.perWeek, prometheus.GaugeValue, f.PerWeek, p)
		ch <- prometheus.MustNewConstMetric(doraDescs.lead, prometheus.GaugeValue, f.LeadTime.Seconds(), p)
		ch <- prometheus.MustNewConstMetric(doraDescs.failure, prometheus.GaugeValue, f.FailureRate, p)
		ch <- prometheus.MustNewConstMetric(doraDescs.restore, prometheus.GaugeValue, f.Restore.Seconds(), p)
	}
}
