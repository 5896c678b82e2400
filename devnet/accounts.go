package devnet

import (
	"crypto/ecdsa"
	"encoding/binary"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"
)

// Account is a funded development account with its private key.
type Account struct {
	Address common.Address
	Key     *ecdsa.PrivateKey
}

// devAccountSeed is mixed into every dev key so that the keys are stable across runs and
// machines, and plainly never meant for value.
const devAccountSeed = "opkit devnet account"

// DevAccounts returns n deterministic development accounts. The same index always yields
// the same key, so a datadir created by one run is usable by the next.
func DevAccounts(n int) []Account {
	out := make([]Account, n)
	for i := range out {
		var idx [8]byte
		binary.BigEndian.PutUint64(idx[:], uint64(i))
		key, err := crypto.ToECDSA(crypto.Keccak256([]byte(devAccountSeed), idx[:]))
		if err != nil {
			// keccak output is a valid secp256k1 scalar with overwhelming probability;
			// a failure here means the derivation itself is broken.
			panic(fmt.Sprintf("devnet: derive account %d: %v", i, err))
		}
		out[i] = Account{Address: crypto.PubkeyToAddress(key.PublicKey), Key: key}
	}
	return out
}

// devBalance is what each dev account holds at genesis: 10^6 ether.
var devBalance = new(big.Int).Mul(big.NewInt(1_000_000), big.NewInt(1e18))
