package clickhouse

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/ogma-dev/ogma/pipeline/anchor"
)

// anchorRow is one tenant's leaf of a statement the log took.
type anchorRow struct {
	tenant            string
	index, seq        uint64
	hash              string
	leaf, size        uint32
	path, root        string
	statement, digest string
	signature         string // base64
	url, uuid         string
	logIndex          int64
	integrated        time.Time
	entry             string // the log's entry, JSON
}

// anchorRows reads the rows of an ogma.anchors record: one per leaf of a
// receipt; a statement not yet in the log has none.
func anchorRows(r *kgo.Record) ([]anchorRow, error) {
	d, err := anchor.Decode(r)
	if err != nil || d.Receipt == nil {
		return nil, err
	}
	rc := d.Receipt
	st, err := anchor.ParseStatement([]byte(rc.Anchor.Statement))
	if err != nil {
		return nil, fmt.Errorf("receipt %d: %w", rc.Anchor.Index, err)
	}
	hashes := anchor.Hashes(rc.Anchor.Leaves)
	rows := make([]anchorRow, len(rc.Anchor.Leaves))
	for i, l := range rc.Anchor.Leaves {
		var path []string
		for _, h := range anchor.Path(hashes, i) {
			path = append(path, hex.EncodeToString(h[:]))
		}
		rows[i] = anchorRow{tenant: l.Tenant, index: rc.Anchor.Index, seq: l.Seq, hash: l.Hash,
			leaf: uint32(i), size: uint32(len(hashes)), path: strings.Join(path, ","), root: st.Root,
			statement: rc.Anchor.Statement, digest: anchor.Digest([]byte(rc.Anchor.Statement)),
			signature: base64.StdEncoding.EncodeToString(rc.Anchor.Signature),
			url:       rc.URL, uuid: rc.UUID, logIndex: rc.LogIndex, integrated: time.Unix(rc.IntegratedTime, 0).UTC(),
			entry: string(rc.Entry)}
	}
	return rows, nil
}

func (s *Sink) insertAnchors(ctx context.Context, rows []anchorRow) error {
	if len(rows) == 0 {
		return nil
	}
	err := s.store.batch(ctx, `INSERT INTO anchors (tenant, anchor_index, seq, hash, leaf_index, tree_size, leaf_path,
		root, statement, statement_digest, signature, log_url, log_uuid, log_index, integrated_time, entry)`, func(add func(...any) error) error {
		for _, r := range rows {
			if err := add(r.tenant, r.index, r.seq, r.hash, r.leaf, r.size, r.path, r.root, r.statement, r.digest,
				r.signature, r.url, r.uuid, r.logIndex, r.integrated, r.entry); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("insert anchors: %w", err)
	}
	return nil
}
