package altda

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"strings"

	"golang.org/x/crypto/sha3"
)

// CommitmentType is the first byte of an encoded commitment.
type CommitmentType byte

const (
	// Keccak256Type commitments carry keccak256(preimage): anyone can verify them.
	Keccak256Type CommitmentType = 0x00
	// GenericType commitments are opaque to op-node; the DA server vouches for the bytes.
	GenericType CommitmentType = 0x01
)

func (t CommitmentType) String() string {
	switch t {
	case Keccak256Type:
		return "keccak256"
	case GenericType:
		return "generic"
	default:
		return fmt.Sprintf("unknown(0x%02x)", byte(t))
	}
}

// MaxCommitmentLen bounds a generic commitment. Real DA layers use well under 1 KiB
// (EigenDA certificates are the largest in use); the bound keeps a hostile URL from
// becoming a large allocation and storage key.
const MaxCommitmentLen = 4096

var (
	// ErrInvalidCommitment is returned for input that is not an encoded commitment.
	ErrInvalidCommitment = errors.New("invalid commitment")
	// ErrCommitmentMismatch is returned when a preimage does not match its commitment.
	ErrCommitmentMismatch = errors.New("commitment does not match the data")
)

// Commitment is an encoded commitment: type byte followed by the payload. It is kept as
// the wire bytes so it can be used directly as a storage key.
type Commitment []byte

// Keccak256Commitment returns 0x00 ‖ keccak256(data).
func Keccak256Commitment(data []byte) Commitment {
	h := keccak256(data)
	return append(Commitment{byte(Keccak256Type)}, h[:]...)
}

// ContentAddressedGeneric returns 0x01 ‖ daLayer ‖ keccak256(data): a generic commitment
// that depends only on the data, so resending the same body yields the same commitment.
func ContentAddressedGeneric(daLayer byte, data []byte) Commitment {
	h := keccak256(data)
	return append(Commitment{byte(GenericType), daLayer}, h[:]...)
}

// DecodeCommitment checks raw commitment bytes (type byte included).
func DecodeCommitment(b []byte) (Commitment, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrInvalidCommitment)
	}
	if len(b) > MaxCommitmentLen {
		return nil, fmt.Errorf("%w: %d bytes is over the %d-byte limit", ErrInvalidCommitment, len(b), MaxCommitmentLen)
	}
	switch CommitmentType(b[0]) {
	case Keccak256Type:
		if len(b) != 33 {
			return nil, fmt.Errorf("%w: keccak256 commitment has %d payload bytes, want 32", ErrInvalidCommitment, len(b)-1)
		}
	case GenericType:
		if len(b) < 2 {
			return nil, fmt.Errorf("%w: generic commitment has no payload", ErrInvalidCommitment)
		}
	default:
		return nil, fmt.Errorf("%w: unknown type byte 0x%02x", ErrInvalidCommitment, b[0])
	}
	return Commitment(bytes.Clone(b)), nil
}

// ParseCommitment parses the hex form used in URLs, with or without a 0x prefix.
func ParseCommitment(s string) (Commitment, error) {
	s = strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")
	if len(s) > 2*MaxCommitmentLen {
		return nil, fmt.Errorf("%w: %d hex characters is over the limit", ErrInvalidCommitment, len(s))
	}
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrInvalidCommitment, err)
	}
	return DecodeCommitment(b)
}

// Type is the commitment's type byte.
func (c Commitment) Type() CommitmentType { return CommitmentType(c[0]) }

// String is the 0x-hex form used in URLs and logs.
func (c Commitment) String() string { return "0x" + hex.EncodeToString(c) }

// LogValue logs the hex form.
func (c Commitment) LogValue() slog.Value { return slog.StringValue(c.String()) }

// TxData is the L1 calldata of a batcher transaction carrying this commitment:
// derivation version 1 followed by the commitment.
func (c Commitment) TxData() []byte { return append([]byte{0x01}, c...) }

// Verifiable reports whether Verify can check data against c: keccak256 commitments and
// content-addressed generic commitments (0x01 ‖ layer ‖ keccak256) can.
func (c Commitment) Verifiable() bool {
	return c.Type() == Keccak256Type || (c.Type() == GenericType && len(c) == 34)
}

// Verify checks data against c. It fails for commitments that are not Verifiable.
func (c Commitment) Verify(data []byte) error {
	if !c.Verifiable() {
		return fmt.Errorf("%w: %s commitment of %d bytes is not content-addressed", ErrCommitmentMismatch, c.Type(), len(c))
	}
	h := keccak256(data)
	if !bytes.Equal(c[len(c)-32:], h[:]) {
		return fmt.Errorf("%w: keccak256 is 0x%x", ErrCommitmentMismatch, h)
	}
	return nil
}

func keccak256(data []byte) (out [32]byte) {
	h := sha3.NewLegacyKeccak256()
	h.Write(data)
	h.Sum(out[:0])
	return out
}
