package seal

import (
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/tink-crypto/tink-go/v2/insecurecleartextkeyset"
	"github.com/tink-crypto/tink-go/v2/keyset"
	gcmpb "github.com/tink-crypto/tink-go/v2/proto/aes_gcm_go_proto"
	"google.golang.org/protobuf/proto"
)

// ErrMAC is returned when a tag does not check: the message was altered, or
// was never signed with this installation's master key.
var ErrMAC = errors.New("seal: tag does not check")

// macInfo separates the MAC key from every other use of the master key; a
// new purpose derives its own key under another label.
const macInfo = "ogma control-record mac v1"

// macKeys derives one HMAC-SHA256 key from each AES-GCM key of the master
// keyset, by its key id: a tag names the master key it was made under, so
// tags made before a rotation still check while the old key is kept.
func macKeys(h *keyset.Handle) (map[uint32][]byte, error) {
	keys := map[uint32][]byte{}
	for _, k := range insecurecleartextkeyset.KeysetMaterial(h).GetKey() {
		var gcm gcmpb.AesGcmKey
		if err := proto.Unmarshal(k.GetKeyData().GetValue(), &gcm); err != nil || len(gcm.GetKeyValue()) == 0 {
			continue // not an AES-GCM key: it derives nothing
		}
		mk, err := hkdf.Key(sha256.New, gcm.GetKeyValue(), nil, macInfo, sha256.Size)
		if err != nil {
			return nil, fmt.Errorf("derive mac key: %w", err)
		}
		keys[k.GetKeyId()] = mk
	}
	if len(keys) == 0 {
		return nil, errors.New("the master keyset holds no AES-GCM key")
	}
	return keys, nil
}

// MAC returns msg's tag under the key derived from the primary master key,
// and that master key's id.
func (k *Keyring) MAC(msg []byte) (keyID uint32, tag []byte) {
	m := hmac.New(sha256.New, k.mac[k.id])
	m.Write(msg)
	return k.id, m.Sum(nil)
}

// CheckMAC checks tag as msg's tag under the key derived from master key
// keyID. A key the keyring does not hold, or a tag that differs, returns an
// error wrapping [ErrMAC].
func (k *Keyring) CheckMAC(keyID uint32, msg, tag []byte) error {
	key, ok := k.mac[keyID]
	if !ok {
		return fmt.Errorf("%w: made under master key %d, which this keyring does not hold", ErrMAC, keyID)
	}
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	if !hmac.Equal(m.Sum(nil), tag) {
		return ErrMAC
	}
	return nil
}
