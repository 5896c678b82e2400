package batch

import (
	"errors"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/rlp"
	"github.com/holiman/uint256"
)

// SpanTxs are a span batch's transactions split into columns, in wire order after the
// contract-creation and y-parity bits: signatures, recipients of non-creations, the
// type-specific data, nonces, gas limits, and the protected bits of legacy transactions.
type SpanTxs struct {
	ContractCreationBits Bitlist
	YParityBits          Bitlist
	Sigs                 []SpanSig
	Tos                  []common.Address
	// Datas are the per-type remainders: legacy rlp([value, gasPrice, data]), else the
	// type byte then rlp of value, fee fields, data, access list (and authorizations).
	Datas  [][]byte
	Nonces []uint64
	Gases  []uint64
	// ProtectedBits has one bit per legacy transaction: set when it is EIP-155 signed.
	ProtectedBits Bitlist
}

// SpanSig is a signature's r and s; v is rebuilt from the y-parity and protected bits.
type SpanSig struct {
	R, S [32]byte
}

// ErrInvalidSpanTx is wrapped by errors rebuilding or splitting a span transaction.
var ErrInvalidSpanTx = errors.New("invalid span batch transaction")

func (t *SpanTxs) check(total uint64) error {
	if uint64(len(t.Nonces)) != total || uint64(len(t.Gases)) != total || uint64(len(t.Datas)) != total ||
		uint64(len(t.Sigs)) != total || t.ContractCreationBits.Len() != total || t.YParityBits.Len() != total {
		return fmt.Errorf("%w: transaction columns do not hold %d entries", ErrInvalidBatch, total)
	}
	if uint64(len(t.Tos)) != total-t.ContractCreationBits.Ones() {
		return fmt.Errorf("%w: %d recipients for %d non-creations", ErrInvalidBatch, len(t.Tos), total-t.ContractCreationBits.Ones())
	}
	return nil
}

func (t *SpanTxs) appendWire(out []byte) []byte {
	out = t.ContractCreationBits.appendWire(out)
	out = t.YParityBits.appendWire(out)
	for i := range t.Sigs {
		out = append(out, t.Sigs[i].R[:]...)
		out = append(out, t.Sigs[i].S[:]...)
	}
	for i := range t.Tos {
		out = append(out, t.Tos[i][:]...)
	}
	for _, d := range t.Datas {
		out = append(out, d...)
	}
	for _, v := range t.Nonces {
		out = appendUvarint(out, v)
	}
	for _, v := range t.Gases {
		out = appendUvarint(out, v)
	}
	return t.ProtectedBits.appendWire(out)
}

func (t *SpanTxs) decode(r *reader, total uint64) error {
	var err error
	if t.ContractCreationBits, err = readBits(r, total, "contract creation"); err != nil {
		return err
	}
	if t.YParityBits, err = readBits(r, total, "y parity"); err != nil {
		return err
	}
	if total*64 > uint64(r.left()) {
		return fmt.Errorf("%w: %d signatures need %d bytes, %d left", ErrInvalidBatch, total, total*64, r.left())
	}
	t.Sigs = make([]SpanSig, total)
	for i := range t.Sigs {
		raw, _ := r.take(64)
		copy(t.Sigs[i].R[:], raw[:32])
		copy(t.Sigs[i].S[:], raw[32:])
	}
	tos := total - t.ContractCreationBits.Ones()
	if tos*20 > uint64(r.left()) {
		return fmt.Errorf("%w: %d recipients need %d bytes, %d left", ErrInvalidBatch, tos, tos*20, r.left())
	}
	t.Tos = make([]common.Address, tos)
	for i := range t.Tos {
		raw, _ := r.take(20)
		copy(t.Tos[i][:], raw)
	}
	// Each data, nonce and gas takes at least one byte: cap the allocations by the input.
	t.Datas = make([][]byte, 0, min(total, uint64(r.left())))
	var legacy uint64
	for i := uint64(0); i < total; i++ {
		d, typ, err := readTxData(r)
		if err != nil {
			return fmt.Errorf("tx %d data: %w", i, err)
		}
		t.Datas = append(t.Datas, d)
		if typ == types.LegacyTxType {
			legacy++
		}
	}
	t.Nonces = make([]uint64, 0, min(total, uint64(r.left())))
	for i := uint64(0); i < total; i++ {
		v, err := r.uvarint("tx nonce")
		if err != nil {
			return err
		}
		t.Nonces = append(t.Nonces, v)
	}
	t.Gases = make([]uint64, 0, min(total, uint64(r.left())))
	for i := uint64(0); i < total; i++ {
		v, err := r.uvarint("tx gas")
		if err != nil {
			return err
		}
		t.Gases = append(t.Gases, v)
	}
	t.ProtectedBits, err = readBits(r, legacy, "protected")
	return err
}

// readTxData reads one transaction's type-specific data: an optional type byte (any
// byte up to 0x7F) and one canonical RLP list whose encoding, header included, is at
// most MaxSpanBatchElementCount bytes. The list's contents are checked only when the
// transaction is rebuilt.
func readTxData(r *reader) ([]byte, byte, error) {
	start := r.off
	if r.left() == 0 {
		return nil, 0, fmt.Errorf("%w: missing tx data", ErrInvalidBatch)
	}
	var typ byte
	if r.b[r.off] <= 0x7F {
		typ = r.b[r.off]
		r.off++
	}
	kind, _, rest, err := rlp.Split(r.b[r.off:])
	if err != nil {
		return nil, 0, fmt.Errorf("%w: tx rlp: %w", ErrInvalidBatch, err)
	}
	if kind != rlp.List {
		return nil, 0, fmt.Errorf("%w: tx rlp is not a list", ErrInvalidBatch)
	}
	// op-node reads the list through an rlp.Stream limited to MaxSpanBatchElementCount
	// bytes, a limit that counts the list header too.
	listLen := r.left() - len(rest)
	if listLen > MaxSpanBatchElementCount {
		return nil, 0, fmt.Errorf("%w: tx data of %d bytes", ErrSpanBatchTooBig, listLen)
	}
	r.off += listLen
	return r.b[start:r.off:r.off], typ, nil
}

// The per-type remainders of a transaction once nonce, gas, recipient and signature are
// in their own columns. Field types are go-ethereum's so the RLP rules (canonical
// integers, 256-bit bounds for the uint256 fields) are the ones op-node applies.
type spanLegacyTx struct {
	Value    *big.Int
	GasPrice *big.Int
	Data     []byte
}

type spanAccessListTx struct {
	Value      *big.Int
	GasPrice   *big.Int
	Data       []byte
	AccessList types.AccessList
}

type spanDynamicFeeTx struct {
	Value      *big.Int
	GasTipCap  *big.Int
	GasFeeCap  *big.Int
	Data       []byte
	AccessList types.AccessList
}

type spanSetCodeTx struct {
	Value      *uint256.Int
	GasTipCap  *uint256.Int
	GasFeeCap  *uint256.Int
	Data       []byte
	AccessList types.AccessList
	AuthList   []types.SetCodeAuthorization
}

// FullTxs rebuilds every transaction's signed binary encoding for chainID. v comes back
// as 27+y for unprotected legacy transactions, 2·chainID+35+y for protected ones and y
// for typed ones.
func (t *SpanTxs) FullTxs(chainID *big.Int) ([][]byte, error) {
	total := len(t.Datas)
	if len(t.Sigs) != total || len(t.Nonces) != total || len(t.Gases) != total {
		return nil, fmt.Errorf("%w: transaction columns differ in length", ErrInvalidSpanTx)
	}
	chain256, overflow := uint256.FromBig(chainID)
	if overflow || chainID.Sign() < 0 {
		return nil, fmt.Errorf("%w: chain id %v does not fit 256 bits", ErrInvalidSpanTx, chainID)
	}
	protectedV := new(big.Int).Add(new(big.Int).Lsh(chainID, 1), big.NewInt(35))
	out := make([][]byte, total)
	var legacyIdx uint64
	toIdx := 0
	for i := 0; i < total; i++ {
		var to *common.Address
		if t.ContractCreationBits.Bit(uint64(i)) == 0 {
			if toIdx >= len(t.Tos) {
				return nil, fmt.Errorf("%w: too few recipients", ErrInvalidSpanTx)
			}
			to = &t.Tos[toIdx]
			toIdx++
		}
		y := uint64(t.YParityBits.Bit(uint64(i)))
		r := new(big.Int).SetBytes(t.Sigs[i].R[:])
		s := new(big.Int).SetBytes(t.Sigs[i].S[:])
		nonce, gas := t.Nonces[i], t.Gases[i]
		d := t.Datas[i]
		var inner types.TxData
		switch {
		case len(d) > 0 && d[0] > 0x7F:
			var p spanLegacyTx
			if err := rlp.DecodeBytes(d, &p); err != nil {
				return nil, fmt.Errorf("%w: tx %d legacy data: %w", ErrInvalidSpanTx, i, err)
			}
			var v *big.Int
			if t.ProtectedBits.Bit(legacyIdx) == 1 {
				v = new(big.Int).Add(protectedV, new(big.Int).SetUint64(y))
			} else {
				v = new(big.Int).SetUint64(27 + y)
			}
			legacyIdx++
			inner = &types.LegacyTx{Nonce: nonce, GasPrice: p.GasPrice, Gas: gas, To: to, Value: p.Value, Data: p.Data, V: v, R: r, S: s}
		case len(d) <= 1:
			return nil, fmt.Errorf("%w: tx %d typed data too short", ErrInvalidSpanTx, i)
		case d[0] == types.AccessListTxType:
			var p spanAccessListTx
			if err := rlp.DecodeBytes(d[1:], &p); err != nil {
				return nil, fmt.Errorf("%w: tx %d access-list data: %w", ErrInvalidSpanTx, i, err)
			}
			inner = &types.AccessListTx{ChainID: chainID, Nonce: nonce, GasPrice: p.GasPrice, Gas: gas, To: to, Value: p.Value,
				Data: p.Data, AccessList: p.AccessList, V: new(big.Int).SetUint64(y), R: r, S: s}
		case d[0] == types.DynamicFeeTxType:
			var p spanDynamicFeeTx
			if err := rlp.DecodeBytes(d[1:], &p); err != nil {
				return nil, fmt.Errorf("%w: tx %d dynamic-fee data: %w", ErrInvalidSpanTx, i, err)
			}
			inner = &types.DynamicFeeTx{ChainID: chainID, Nonce: nonce, GasTipCap: p.GasTipCap, GasFeeCap: p.GasFeeCap, Gas: gas,
				To: to, Value: p.Value, Data: p.Data, AccessList: p.AccessList, V: new(big.Int).SetUint64(y), R: r, S: s}
		case d[0] == types.SetCodeTxType:
			var p spanSetCodeTx
			if err := rlp.DecodeBytes(d[1:], &p); err != nil {
				return nil, fmt.Errorf("%w: tx %d set-code data: %w", ErrInvalidSpanTx, i, err)
			}
			if to == nil {
				return nil, fmt.Errorf("%w: tx %d: a set-code transaction cannot create a contract", ErrInvalidSpanTx, i)
			}
			inner = &types.SetCodeTx{ChainID: chain256, Nonce: nonce, GasTipCap: p.GasTipCap, GasFeeCap: p.GasFeeCap, Gas: gas,
				To: *to, Value: p.Value, Data: p.Data, AccessList: p.AccessList, AuthList: p.AuthList,
				V: uint256.NewInt(y), R: new(uint256.Int).SetBytes32(t.Sigs[i].R[:]), S: new(uint256.Int).SetBytes32(t.Sigs[i].S[:])}
		default:
			// A type byte 0x00 in front of a list: counted as legacy, but not decodable.
			return nil, fmt.Errorf("%w: tx %d: type %d not supported", ErrInvalidSpanTx, i, d[0])
		}
		enc, err := types.NewTx(inner).MarshalBinary()
		if err != nil {
			return nil, fmt.Errorf("%w: tx %d: %w", ErrInvalidSpanTx, i, err)
		}
		out[i] = enc
	}
	return out, nil
}

// appendTx adds one signed transaction to the columns. Only the types a span batch can
// carry are accepted, and a protected transaction must be for chainID.
func (t *SpanTxs) appendTx(tx *types.Transaction, chainID *big.Int) error {
	typ := tx.Type()
	v, r, s := tx.RawSignatureValues()
	var y uint64
	var data []byte
	var err error
	switch typ {
	case types.LegacyTxType:
		protected := tx.Protected()
		switch {
		case !protected && v.IsUint64() && (v.Uint64() == 27 || v.Uint64() == 28):
			y = v.Uint64() - 27
		case protected:
			y = uint64(new(big.Int).Sub(v, big.NewInt(35)).Bit(0))
		default:
			return fmt.Errorf("%w: legacy tx %s has v %v", ErrInvalidSpanTx, tx.Hash(), v)
		}
		t.ProtectedBits.Append(protected)
		data, err = rlp.EncodeToBytes(&spanLegacyTx{Value: tx.Value(), GasPrice: tx.GasPrice(), Data: tx.Data()})
	case types.AccessListTxType, types.DynamicFeeTxType, types.SetCodeTxType:
		if !v.IsUint64() || v.Uint64() > 1 {
			return fmt.Errorf("%w: tx %s has y parity %v", ErrInvalidSpanTx, tx.Hash(), v)
		}
		y = v.Uint64()
		var payload any
		switch typ {
		case types.AccessListTxType:
			payload = &spanAccessListTx{Value: tx.Value(), GasPrice: tx.GasPrice(), Data: tx.Data(), AccessList: tx.AccessList()}
		case types.DynamicFeeTxType:
			payload = &spanDynamicFeeTx{Value: tx.Value(), GasTipCap: tx.GasTipCap(), GasFeeCap: tx.GasFeeCap(), Data: tx.Data(), AccessList: tx.AccessList()}
		default:
			payload = &spanSetCodeTx{Value: u256(tx.Value()), GasTipCap: u256(tx.GasTipCap()), GasFeeCap: u256(tx.GasFeeCap()),
				Data: tx.Data(), AccessList: tx.AccessList(), AuthList: tx.SetCodeAuthorizations()}
		}
		var enc []byte
		enc, err = rlp.EncodeToBytes(payload)
		data = append([]byte{typ}, enc...)
	default:
		return fmt.Errorf("%w: tx %s has type %d", ErrInvalidSpanTx, tx.Hash(), typ)
	}
	if err != nil {
		return fmt.Errorf("%w: encoding tx %s: %w", ErrInvalidSpanTx, tx.Hash(), err)
	}
	if tx.Protected() && tx.ChainId().Cmp(chainID) != 0 {
		return fmt.Errorf("%w: tx %s is for chain %v, not %v", ErrInvalidSpanTx, tx.Hash(), tx.ChainId(), chainID)
	}
	var sig SpanSig
	if r.BitLen() > 256 || s.BitLen() > 256 {
		return fmt.Errorf("%w: tx %s signature does not fit 256 bits", ErrInvalidSpanTx, tx.Hash())
	}
	r.FillBytes(sig.R[:])
	s.FillBytes(sig.S[:])
	t.Sigs = append(t.Sigs, sig)
	t.ContractCreationBits.Append(tx.To() == nil)
	if to := tx.To(); to != nil {
		t.Tos = append(t.Tos, *to)
	}
	t.YParityBits.Append(y == 1)
	t.Nonces = append(t.Nonces, tx.Nonce())
	t.Gases = append(t.Gases, tx.Gas())
	t.Datas = append(t.Datas, data)
	return nil
}

func u256(v *big.Int) *uint256.Int {
	u, _ := uint256.FromBig(v)
	return u
}
