package clickhouse

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
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
	trs := rc.TenantReceipts()
	rows := make([]anchorRow, len(trs))
	for i, tr := range trs {
		rows[i] = anchorRow{tenant: tr.Leaf.Tenant, index: tr.Index, seq: tr.Leaf.Seq, hash: tr.Leaf.Hash,
			leaf: uint32(i), size: uint32(st.Size), path: strings.Join(tr.Path, ","), root: st.Root,
			statement: tr.Statement, digest: anchor.Digest([]byte(tr.Statement)),
			signature: base64.StdEncoding.EncodeToString(tr.Signature),
			url:       tr.URL, uuid: tr.UUID, logIndex: tr.LogIndex, integrated: time.Unix(tr.IntegratedTime, 0).UTC(),
			entry: string(tr.Entry)}
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

// streamTimeout bounds a read that streams a whole chain: a million events
// take seconds, and the reader writes each as it comes.
const streamTimeout = time.Hour

// Head returns the last event of tenant's ledger: its seq and hash (0 and
// "" for none).
func (s *Store) Head(ctx context.Context, tenant string) (uint64, string, error) {
	h, err := s.head(ctx, tenant)
	if err != nil || h.seq == 0 {
		return 0, "", err
	}
	return h.seq, h.hash, nil
}

// AnchorRow is what the anchors table says of one statement for a tenant.
type AnchorRow struct {
	Index, Seq     uint64
	LogIndex       int64
	IntegratedTime time.Time
	LogURL         string
}

// LastAnchor returns the newest statement that covers tenant; ok is false
// before the first.
func (s *Store) LastAnchor(ctx context.Context, tenant string) (a AnchorRow, ok bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT anchor_index, seq, log_index, integrated_time, log_url FROM anchors FINAL
		WHERE tenant = ? ORDER BY anchor_index DESC LIMIT 1`, tenant)
	if err != nil {
		return a, false, fmt.Errorf("read anchors: %w", err)
	}
	defer rows.Close()
	if rows.Next() {
		if err := rows.Scan(&a.Index, &a.Seq, &a.LogIndex, &a.IntegratedTime, &a.LogURL); err != nil {
			return a, false, fmt.Errorf("read anchors: %w", err)
		}
		ok = true
	}
	return a, ok, rows.Err()
}

// Coverage is what one stream's manifests prove: Buckets settled buckets
// with a manifest, from First to Last bucket start (RFC 3339).
type Coverage struct {
	Vendor, Stream string
	Buckets        uint64
	First, Last    string
}

// Coverage returns, per stream of tenant, the buckets its manifests cover.
func (s *Store) Coverage(ctx context.Context, tenant string) ([]Coverage, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT vendor, stream, uniqExact(bucket_start), min(bucket_start), max(bucket_start) FROM manifests
		WHERE tenant = ? GROUP BY vendor, stream ORDER BY vendor, stream`, tenant)
	if err != nil {
		return nil, fmt.Errorf("read coverage: %w", err)
	}
	defer rows.Close()
	var out []Coverage
	for rows.Next() {
		var c Coverage
		if err := rows.Scan(&c.Vendor, &c.Stream, &c.Buckets, &c.First, &c.Last); err != nil {
			return nil, fmt.Errorf("read coverage: %w", err)
		}
		out = append(out, c)
	}
	return out, rows.Err()
}

// WriteBundle writes the evidence bundle of h's tenant to w: its receipts
// (unless receipts is false) and its events from h.FromSeq on.
func (s *Store) WriteBundle(ctx context.Context, w io.Writer, h anchor.BundleHeader, receipts bool) error {
	bw, err := anchor.NewBundleWriter(w, h)
	if err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	if receipts {
		// The sink writes receipts and events as each comes: a receipt can
		// be in before the events it states, and waits for the next bundle.
		head, _, err := s.Head(ctx, h.Tenant)
		if err != nil {
			return err
		}
		if err := s.TenantReceipts(ctx, h.Tenant, head, bw.Anchor); err != nil {
			return err
		}
	}
	if err := s.ChainEvents(ctx, h.Tenant, h.FromSeq, h.Data, bw.Event); err != nil {
		return err
	}
	if err := bw.Close(); err != nil {
		return fmt.Errorf("bundle: %w", err)
	}
	return nil
}

// TenantReceipts calls fn with each receipt of tenant that states a seq
// up to through, by anchor index.
func (s *Store) TenantReceipts(ctx context.Context, tenant string, through uint64, fn func(anchor.TenantReceipt) error) error {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	rows, err := s.conn.Query(ctx, `SELECT anchor_index, seq, hash, leaf_index, leaf_path, statement, signature,
		log_url, log_uuid, log_index, integrated_time, entry
		FROM anchors FINAL WHERE tenant = ? AND seq <= ? ORDER BY anchor_index`, tenant, through)
	if err != nil {
		return fmt.Errorf("read anchors: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			rc         anchor.TenantReceipt
			leaf       uint32
			path, sig  string
			entry      string
			integrated time.Time
		)
		if err := rows.Scan(&rc.Index, &rc.Leaf.Seq, &rc.Leaf.Hash, &leaf, &path, &rc.Statement, &sig,
			&rc.URL, &rc.UUID, &rc.LogIndex, &integrated, &entry); err != nil {
			return fmt.Errorf("read anchors: %w", err)
		}
		rc.Leaf.Tenant, rc.LeafIndex, rc.Log = tenant, int(leaf), anchor.LogRekorV1
		rc.IntegratedTime, rc.Entry = integrated.Unix(), json.RawMessage(entry)
		if path != "" {
			rc.Path = strings.Split(path, ",")
		}
		if rc.Signature, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return fmt.Errorf("read anchors: anchor %d: signature: %w", rc.Index, err)
		}
		if err := fn(rc); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read anchors: %w", err)
	}
	return nil
}

// ChainEvents calls fn with each event of tenant's ledger from seq from on,
// by seq — with its data and salt if withData, and as erased (” in the
// ledger) without them. A fork shows as two events of one seq.
func (s *Store) ChainEvents(ctx context.Context, tenant string, from uint64, withData bool, fn func(anchor.BundleEvent) error) error {
	ctx, cancel := context.WithTimeout(ctx, streamTimeout)
	defer cancel()
	cols := "seq, hash, canonical, '', ''"
	if withData {
		cols = "seq, hash, canonical, data, salt"
	}
	rows, err := s.conn.Query(ctx, `SELECT `+cols+` FROM events FINAL WHERE tenant = ? AND seq >= ? ORDER BY seq, hash`, tenant, from)
	if err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var e anchor.BundleEvent
		var canonical, data string
		if err := rows.Scan(&e.Seq, &e.Hash, &canonical, &data, &e.Salt); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		e.Canonical = json.RawMessage(canonical)
		if data != "" {
			e.Data = json.RawMessage(data)
		}
		if err := fn(e); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read events: %w", err)
	}
	return nil
}
