package event

import (
	"crypto/aes"
	"crypto/cipher"
	"encoding/hex"
	"errors"
	"fmt"
)

// A record's data and salt travel sealed under its tenant's data key, so
// that destroying the key erases them from every copy of ogma.events
// (crypto-shredding) while the chain — each event and its hash — stays
// readable and verifiable:
//
//	sealed = AES-256-GCM(key, nonce, salt ‖ data, additional data = tenant)
//
// with the nonce the first 12 bytes of data_digest. The plaintext is
// exactly what data_digest hashes, so the nonce is a digest of the
// plaintext: sealing is deterministic (a replay writes the same bytes), two
// plaintexts share a nonce only if their digests share 96 bits, and a
// sealed payload opens only beside the event whose digest it was sealed
// for.

// DataKeySize is the length of a tenant's data key: AES-256.
const DataKeySize = 32

// ErrNotSealed is what Open returns for a record that carries its data in
// the clear, as records before sealing did.
var ErrNotSealed = errors.New("event record: data is not sealed")

// DataCipher returns the AEAD of a tenant's data key.
func DataCipher(key []byte) (cipher.AEAD, error) {
	if len(key) != DataKeySize {
		return nil, fmt.Errorf("event: data key is %d bytes, want %d", len(key), DataKeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}

// SealData seals data and its hex salt for an event of tenant whose data
// digest is dataDigest (which it does not check: the caller computed it).
func SealData(aead cipher.AEAD, tenant, dataDigest string, data []byte, salt string) ([]byte, error) {
	nonce, err := digestNonce(dataDigest)
	if err != nil {
		return nil, err
	}
	s, err := parseSalt(salt)
	if err != nil {
		return nil, err
	}
	plain := append(make([]byte, 0, len(s)+len(data)+aead.Overhead()), s[:]...)
	plain = append(plain, data...)
	return aead.Seal(plain[:0], nonce, plain, []byte(tenant)), nil
}

// Open fills r's Data and Salt from its sealed payload, under the tenant's
// data key. A record that is not sealed is ErrNotSealed.
func (r *Record) Open(aead cipher.AEAD) error {
	if r.Sealed == nil {
		return ErrNotSealed
	}
	nonce, err := digestNonce(r.Event.DataDigest)
	if err != nil {
		return err
	}
	plain, err := aead.Open(nil, nonce, r.Sealed, []byte(r.Event.Tenant))
	if err != nil || len(plain) < 32 {
		return fmt.Errorf("event record %s/%d: sealed data does not open under the tenant's key", r.Event.Tenant, r.Event.Seq)
	}
	r.Salt, r.Data = hex.EncodeToString(plain[:32]), plain[32:]
	return nil
}

func digestNonce(dataDigest string) ([]byte, error) {
	if len(dataDigest) < 24 {
		return nil, fmt.Errorf("event: data digest %q is too short", dataDigest)
	}
	nonce, err := hex.DecodeString(dataDigest[:24])
	if err != nil {
		return nil, fmt.Errorf("event: data digest: %w", err)
	}
	return nonce, nil
}
