package interop

import (
	"fmt"
	"strconv"
	"strings"
)

// ChainID is an L2 chain ID. On the wire it is a decimal string ("901"), as op-node sends
// it; decoding also accepts 0x-hex, which the OP Stack's decoder accepts too.
type ChainID uint64

func (id ChainID) String() string { return strconv.FormatUint(uint64(id), 10) }

// MarshalText writes the decimal form.
func (id ChainID) MarshalText() ([]byte, error) { return []byte(id.String()), nil }

// UnmarshalText reads a decimal or 0x-hex chain ID that fits in 64 bits.
func (id *ChainID) UnmarshalText(data []byte) error {
	v, err := ParseChainID(string(data))
	if err != nil {
		return err
	}
	*id = v
	return nil
}

// ParseChainID reads a decimal or 0x-hex chain ID.
func ParseChainID(s string) (ChainID, error) {
	var (
		v   uint64
		err error
	)
	if rest, ok := strings.CutPrefix(s, "0x"); ok {
		if rest == "" {
			return 0, fmt.Errorf("chain ID %q: no digits", s)
		}
		v, err = strconv.ParseUint(rest, 16, 64)
	} else {
		v, err = strconv.ParseUint(s, 10, 64)
	}
	if err != nil {
		return 0, fmt.Errorf("chain ID %q: %w", s, err)
	}
	return ChainID(v), nil
}
