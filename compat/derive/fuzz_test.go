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

// FuzzDifferentialRaw posts raw batcher data from the fuzz input: items split at
// 0xff 0xfe, L1 blocks at 0xff 0xfd. The seeds are valid frames of valid batches, which
// the fuzzer cuts and splices; both pipelines must derive the same chain from anything.
func FuzzDifferentialRaw(f *testing.F) {
	seed := func(build func(s *scenario) [][][]byte) {
		s := newScenario(&testing.T{})
		var out []byte
		for _, block := range build(s) {
			for _, item := range block {
				out = append(out, item...)
				out = append(out, 0xff, 0xfe)
			}
			out = append(out, 0xff, 0xfd)
		}
		f.Add(out)
	}
	seed(func(s *scenario) [][][]byte {
		fs := frames(1, s.channel(s.batch(1, 0, 1), s.batch(2, 0, 0), s.batch(3, 0, 1)), 3)
		return [][][]byte{{s.txData(fs[0], fs[1])}, {s.txData(fs[2]), s.txData(frames(2, s.channel(s.batch(4, 0, 1)), 1)...)}}
	})
	seed(func(s *scenario) [][][]byte {
		epochOf := func(n uint64) uint64 { return n * 2 / 12 }
		return [][][]byte{{s.txData(frames(1, s.channel(s.span(1, 7, epochOf, 1)), 2)...)}, {}, {s.txData(frames(3, s.channel(s.span(8, 9, epochOf, 0)), 1)...)}}
	})
	f.Fuzz(func(t *testing.T, data []byte) {
		if len(data) > 1<<16 {
			return
		}
		s := newScenario(t)
		var items [][]byte
		start := 0
		for i := 0; i+1 < len(data) && s.c.next < len(s.c.headers)-1; i++ {
			if data[i] != 0xff || (data[i+1] != 0xfe && data[i+1] != 0xfd) {
				continue
			}
			if i > start {
				items = append(items, data[start:i])
			}
			if data[i+1] == 0xfd {
				var txs []*types.Transaction
				for _, it := range items {
					txs = append(txs, s.l1Tx(s.batcher, it))
				}
				s.c.mine(txs...)
				items = nil
			}
			start = i + 2
			i++
		}
		a := runOpkit(t, s.cfg, params.MergedTestChainConfig, s.c)
		b := runOpnode(t, s.cfg, params.MergedTestChainConfig, s.c)
		compare(t, a, b)
	})
}
