package derive

import (
	"testing"

	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/params"
)

// FuzzDifferential posts a script of batches and junk, read from the fuzz input, to an L1
// and requires opkit and op-node to derive the same chain from it. Each op is four
// bytes: kind, block number, epoch, and a count (transactions, span length or frames).
func FuzzDifferential(f *testing.F) {
	f.Add([]byte{0, 1, 0, 1, 0, 2, 0, 0, 1, 3, 0, 2, 5, 0, 0, 0, 0, 4, 0, 1})
	f.Add([]byte{1, 1, 0, 8, 2, 0, 0, 0, 1, 7, 1, 5, 3, 9, 1, 3, 5, 0, 0, 0, 0, 12, 2, 1})
	f.Add([]byte{4, 1, 0, 2, 4, 2, 0, 3, 5, 0, 0, 0, 3, 3, 0, 1, 0, 6, 9, 1})
	f.Fuzz(func(t *testing.T, script []byte) {
		if len(script) > 4*48 {
			script = script[:4*48]
		}
		s := newScenario(t)
		var pending [][]byte // batcher data of the L1 block being filled
		block := func() {
			var txs []*types.Transaction
			for _, d := range pending {
				txs = append(txs, s.l1Tx(s.batcher, d))
			}
			s.c.mine(txs...)
			pending = nil
		}
		id := byte(0)
		for i := 0; i+3 < len(script) && s.c.next < len(s.c.headers)-1; i += 4 {
			kind, n, epoch, count := script[i]%6, uint64(script[i+1]%40)+1, uint64(script[i+2]%12), int(script[i+3]%4)
			id++
			switch kind {
			case 0: // a singular batch in its own channel, in count+1 frames
				for _, fr := range frames(id, s.channel(s.batch(n, epoch, count)), count+1) {
					pending = append(pending, s.txData(fr))
				}
			case 1: // a span batch of count+1 blocks from n, epochs following the block times
				epochOf := func(m uint64) uint64 { return min(epoch+(m-n)*2/12, 11) }
				pending = append(pending, s.txData(frames(id, s.channel(s.span(n, n+uint64(count), epochOf, 1)), 1)...))
			case 2: // junk from the batcher
				pending = append(pending, script[i:i+4])
			case 3: // the first frame only of a channel
				pending = append(pending, s.txData(frames(id, s.channel(s.batch(n, epoch, 1)), 2)[0]))
			case 4: // close the L1 block
				block()
			case 5: // skip count L1 blocks
				block()
				for j := 0; j < count*5 && s.c.next < len(s.c.headers)-1; j++ {
					s.c.mine()
				}
			}
		}
		if s.c.next < len(s.c.headers) {
			block()
		}
		a := runOpkit(t, s.cfg, params.MergedTestChainConfig, s.c)
		b := runOpnode(t, s.cfg, params.MergedTestChainConfig, s.c)
		compare(t, a, b)
	})
}
