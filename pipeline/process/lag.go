package process

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/topic"
)

// errFirst stops a read at its first record.
var errFirst = errors.New("first record read")

// watchLag refreshes the lag gauges every interval until ctx ends, from
// the group's committed offsets and the last stable offsets — not from
// fetches, which stop when there is nothing to fetch.
func (p *Processor) watchLag(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if err := p.refreshLag(ctx); err != nil && ctx.Err() == nil {
			p.log.DebugContext(ctx, "lag refresh", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// refreshLag sets, per raw partition, the records between the group's
// committed offset and the last stable offset, and the age of the oldest
// of them. Transaction markers take offsets too: a partition whose
// committed offset is followed by markers alone has no lag, which a read
// from the committed offset tells.
func (p *Processor) refreshLag(ctx context.Context) error {
	cl, err := p.deps.Dial()
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	parts := topic.Partitions(p.deps.Layout.Partitions)
	ends, err := adm.ListEndOffsets(ctx, topic.Raw) // read committed: the last stable offsets
	if err != nil {
		return err
	}
	committed, err := adm.FetchOffsets(ctx, p.cfg.Group)
	if err != nil {
		return err
	}
	oldest := time.Duration(0)
	for _, part := range parts {
		end, ok := ends.Lookup(topic.Raw, part)
		if !ok || end.Err != nil {
			continue
		}
		from := int64(0)
		if c, ok := committed.Lookup(topic.Raw, part); ok && c.At >= 0 {
			from = c.At
		}
		lag := max(end.Offset-from, 0)
		if lag > 0 {
			var first *kgo.Record
			err := topic.ReadFrom(ctx, p.deps.Dial, topic.Raw, map[int32]int64{part: from}, func(r *kgo.Record) error {
				first = r
				return errFirst
			})
			switch {
			case err != nil && !errors.Is(err, errFirst):
				return err
			case first == nil:
				lag = 0 // only markers
			default:
				oldest = max(oldest, p.now().Sub(first.Timestamp))
			}
		}
		p.metrics.lag.WithLabelValues(strconv.Itoa(int(part))).Set(float64(lag))
	}
	p.metrics.oldest.Set(oldest.Seconds())
	return nil
}
