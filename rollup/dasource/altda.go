package dasource

import (
	"context"
	"errors"
	"fmt"

	"github.com/ethereum/go-ethereum"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/derive"
)

// derivationVersion1 marks batcher data that is an AltDA commitment, not frames.
const derivationVersion1 = 0x01

// altDAInput resolves one batcher data item on an AltDA chain. Data not starting with
// 0x01 is frames posted directly (the batcher's L1 fallback) and passes unchanged. keep is
// false for an item derivation skips: no valid commitment, a commitment of the type the
// chain does not use, or a keccak input over MaxAltDAInputSize.
//
// A 404 follows op-node without a challenge contract in play: the input may still turn up
// (or be challenged) while the challenge window runs, so derivation waits (a temporary
// error) until L1 holds a block past inclusion + da_challenge_window; after that the data
// is lost for good and derivation stops (critical). opkit does not read challenge events,
// so a challenge resolved on L1 does not supply the input.
func (s *Source) altDAInput(ctx context.Context, ref eth.L1BlockRef, data []byte) ([]byte, bool, error) {
	if len(data) == 0 || data[0] != derivationVersion1 {
		return data, true, nil
	}
	comm, err := altda.DecodeCommitment(data[1:])
	if err != nil {
		s.badComms.Add(1)
		s.metrics.DataDropped(DropBadCommitment)
		s.log.Warn("skipping AltDA data that is no commitment", "l1", ref, "err", err)
		return nil, false, nil
	}
	if comm.Type() != s.daType {
		s.mismatch.Add(1)
		s.metrics.DataDropped(DropCommitmentMismatch)
		s.log.Warn("skipping an AltDA commitment of the wrong type", "l1", ref, "comm", comm, "want", s.daType)
		return nil, false, nil
	}
	input, err := s.da.Get(ctx, comm)
	switch {
	case err == nil:
	case errors.Is(err, altda.ErrNotFound):
		return nil, false, s.missingInput(ctx, ref, comm, err)
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return nil, false, fmt.Errorf("AltDA input %s: %w", comm, err)
	default:
		return nil, false, derive.NewTemporaryError(fmt.Errorf("AltDA input %s of L1 block %s: %w", comm, ref, err))
	}
	s.daFetched.Add(1)
	if comm.Type() == altda.Keccak256Type && len(input) > MaxAltDAInputSize {
		s.tooLarge.Add(1)
		s.metrics.DataDropped(DropAltDATooLarge)
		s.log.Warn("skipping an AltDA input over the size limit", "l1", ref, "comm", comm, "size", len(input), "max", MaxAltDAInputSize)
		return nil, false, nil
	}
	return input, true, nil
}

// missingInput decides what a 404 means: wait while the challenge window runs, stop
// once L1 has moved past it.
func (s *Source) missingInput(ctx context.Context, ref eth.L1BlockRef, comm altda.Commitment, cause error) error {
	past := ref.Number + s.cfg.AltDAConfig.DAChallengeWindow + 1
	_, err := s.l1.L1BlockRefByNumber(ctx, past)
	switch {
	case err == nil:
		return derive.NewCriticalError(fmt.Errorf("AltDA input %s of L1 block %s: %w (L1 has block %d): %w", comm, ref, ErrMissingPastWindow, past, cause))
	case errors.Is(err, ethereum.NotFound):
		return derive.NewTemporaryError(fmt.Errorf("AltDA input %s of L1 block %s not on the DA server yet; its challenge window ends after L1 block %d: %w", comm, ref, past-1, cause))
	default:
		return derive.NewTemporaryError(fmt.Errorf("AltDA input %s of L1 block %s: %w; and checking its challenge window: %w", comm, ref, cause, err))
	}
}
