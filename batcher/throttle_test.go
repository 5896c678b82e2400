package batcher

import "testing"

func TestThrottleLimits(t *testing.T) {
	tc := ThrottleConfig{LowerThreshold: 1000, UpperThreshold: 3000, TxSizeLowerLimit: 100, TxSizeUpperLimit: 1100,
		BlockSizeLowerLimit: 2000, BlockSizeUpperLimit: 4000}
	cases := []struct {
		pending   uint64
		intensity float64
		tx, block uint64
	}{
		{0, 0, 0, 4000},
		{1000, 0, 0, 4000},
		{2000, 0.5, 600, 3000},
		{3000, 1, 100, 2000},
		{9000, 1, 100, 2000},
	}
	for _, c := range cases {
		i, lim := throttleLimits(tc, c.pending)
		if i != c.intensity || lim[0] != c.tx || lim[1] != c.block {
			t.Errorf("pending %d: intensity %v limits %v, want %v [%d %d]", c.pending, i, lim, c.intensity, c.tx, c.block)
		}
	}
}
