package eth

import (
	"errors"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/crypto/sha3"
)

func TestOutputV0Root(t *testing.T) {
	o := OutputV0{StateRoot: common.Hash{1, 2, 3}, MessagePasserStorageRoot: common.Hash{4, 5, 6}, BlockHash: common.Hash{7, 8, 9}}

	// Independent construction of the preimage: 32 zero bytes of version, then the three roots.
	pre := make([]byte, 128)
	copy(pre[32:], []byte{1, 2, 3})
	copy(pre[64:], []byte{4, 5, 6})
	copy(pre[96:], []byte{7, 8, 9})
	h := sha3.NewLegacyKeccak256()
	h.Write(pre)
	want := common.BytesToHash(h.Sum(nil))

	if got := o.Root(); got != want {
		t.Fatalf("root %s, want %s", got, want)
	}
	back, err := UnmarshalOutputV0(o.Marshal())
	if err != nil || back != o {
		t.Fatalf("unmarshal: %v %+v", err, back)
	}
}

func TestUnmarshalOutputV0Rejects(t *testing.T) {
	if _, err := UnmarshalOutputV0(make([]byte, 64)); !errors.Is(err, ErrInvalidOutput) {
		t.Fatalf("short input: %v", err)
	}
	bad := make([]byte, 128)
	bad[0] = 1
	if _, err := UnmarshalOutputV0(bad); !errors.Is(err, ErrInvalidOutput) {
		t.Fatalf("unknown version: %v", err)
	}
}
