package poll

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ogma-dev/ogma/internal/commitclock"
)

type metrics struct {
	polls        *prometheus.CounterVec
	pollDuration *prometheus.HistogramVec
	records      *prometheus.CounterVec
	txns         *prometheus.CounterVec
	partitions   prometheus.Gauge
	commits      *commitclock.Clock
}

func newMetrics(reg prometheus.Registerer) *metrics {
	m := &metrics{
		polls: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ogma_connector_polls_total",
			Help: "Stream polls by vendor, stream and result (ok, error). A poll reads every page that is due.",
		}, []string{"vendor", "stream", "result"}),
		pollDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ogma_connector_poll_duration_seconds",
			Help:    "Time one stream poll took, vendor calls and Kafka transactions included.",
			Buckets: prometheus.ExponentialBuckets(0.01, 4, 8),
		}, []string{"vendor", "stream"}),
		records: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ogma_connector_raw_records_total",
			Help: "Raw vendor records committed to ogma.raw.",
		}, []string{"vendor", "stream"}),
		txns: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ogma_connector_transactions_total",
			Help: "Page transactions (raw records + cursor) by result: committed, aborted.",
		}, []string{"result"}),
		partitions: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "ogma_connector_partitions_owned",
			Help: "ogma.control partitions (and so tenants) this connector instance owns.",
		}),
		commits: commitclock.New("connector", reg),
	}
	if reg != nil {
		reg.MustRegister(m.polls, m.pollDuration, m.records, m.txns, m.partitions)
	}
	return m
}
