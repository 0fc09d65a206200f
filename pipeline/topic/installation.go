package topic

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/twmb/franz-go/pkg/kgo"
)

// InstallationKey is the ogma.control key of the installation's id.
const InstallationKey = "installation/id"

// Installation identifies an installation: a random id recorded in
// ogma.control by the first start, so that stores outside Kafka
// (ClickHouse) can tell whether what they hold was written by it.
type Installation struct {
	ID string
	// Adopted is set when this start recorded the id for an installation
	// older than ids: ogma.control already held tenants. Its stores hold no
	// id yet and may be claimed as they are.
	Adopted bool
}

type installationRecord struct {
	ID string `json:"id"`
}

// EnsureInstallation returns the installation's id from ogma.control,
// recording a new one when there is none. When two roles start an
// installation at once, each may record its own: the last record is the
// id from then on.
func EnsureInstallation(ctx context.Context, dial Dial, l Layout) (Installation, error) {
	inst, tenants, err := readInstallation(ctx, dial, l)
	if err != nil || inst.ID != "" {
		return inst, err
	}
	b := make([]byte, 16)
	rand.Read(b) // never fails (crypto/rand)
	inst = Installation{ID: hex.EncodeToString(b), Adopted: tenants}
	v, _ := json.Marshal(installationRecord{ID: inst.ID})
	cl, err := dial(ProducerOpt())
	if err != nil {
		return Installation{}, err
	}
	defer cl.Close()
	actx, cancel := context.WithTimeout(ctx, adminTimeout)
	defer cancel()
	r := &kgo.Record{Topic: Control, Partition: 0, Key: []byte(InstallationKey), Value: v}
	if err := cl.ProduceSync(actx, r).FirstErr(); err != nil {
		return Installation{}, fmt.Errorf("record installation id: %w", err)
	}
	return inst, nil
}

// readInstallation returns the recorded id, if any, and whether
// ogma.control holds a tenant.
func readInstallation(ctx context.Context, dial Dial, l Layout) (inst Installation, tenants bool, err error) {
	err = ReadToEnd(ctx, dial, Control, Partitions(l.Partitions), func(r *kgo.Record) error {
		switch {
		case strings.HasPrefix(string(r.Key), "tenant/") && r.Value != nil:
			tenants = true
		case string(r.Key) == InstallationKey:
			var rec installationRecord
			if json.Unmarshal(r.Value, &rec) == nil && rec.ID != "" {
				inst.ID = rec.ID // one that does not parse is skipped
			}
		}
		return nil
	})
	return inst, tenants, err
}
