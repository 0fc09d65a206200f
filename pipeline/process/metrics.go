package process

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ogma-dev/ogma/internal/commitclock"
)

type metrics struct {
	records *prometheus.CounterVec
	txns    *prometheus.CounterVec
	restore prometheus.Histogram
	// lag is per raw partition: records not processed yet, refreshed on a
	// timer; oldest is the age of the oldest of them.
	lag        *prometheus.GaugeVec
	oldest     prometheus.Gauge
	aborts     prometheus.Gauge
	commits    *commitclock.Clock
	stateBytes prometheus.Gauge
	gaps       prometheus.Counter
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ogma_processor_records_total",
			Help: "Raw records processed, by outcome: emitted (made an event), deduped, provisional, deadlettered, skipped (already events).",
		}, []string{"outcome"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ogma_processor_transactions_total",
			Help: "Processor transactions by result: committed, aborted, expired (open past the transaction timeout, so the broker aborted it; the batch is read again in a new session).",
		}, []string{"result"}),
		restore: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ogma_processor_restore_duration_seconds",
			Help:    "Time to bring a partition's state up to date from ogma.events on assignment.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 10),
		}),
		lag: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "ogma_processor_lag_records",
			Help: "Raw records not processed yet, per ogma.raw partition: from the group's committed offset to the last stable offset, transaction markers not counted. Refreshed every lag interval.",
		}, []string{"partition"}),
		oldest: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ogma_processor_oldest_unprocessed_seconds",
			Help: "Age of the oldest raw record not processed yet (0 when caught up). Refreshed every lag interval.",
		}),
		aborts: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ogma_processor_aborts_in_a_row",
			Help: "Transactions aborted in a row since the last commit; more than a few means a batch cannot commit (see the error log).",
		}),
		commits: commitclock.New("processor", reg),
		stateBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ogma_processor_state_bytes",
			Help: "Disk space of the processor's local state store (heads, dedupe map, walks).",
		}),
		gaps: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "ogma_processor_chain_gaps_total",
			Help: "Reads of ogma.events on restore that found a tenant's chain broken (a seq gap or a prev that does not link); a second one in a row stops the processor.",
		}),
	}
	if reg != nil {
		reg.MustRegister(m.records, m.txns, m.restore, m.lag, m.oldest, m.aborts, m.stateBytes, m.gaps)
	}
	return m
}
