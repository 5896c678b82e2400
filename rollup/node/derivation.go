package node

import (
	"context"

	"github.com/opkit/opkit/eth"
	"github.com/opkit/opkit/rollup/derive"
	"github.com/opkit/opkit/rollup/engine"
)

// derivation adapts rollup/derive's pipeline stages to the Deriver the node drives.
type derivation struct{ d *derive.Derivation }

// NewDeriver wraps a derive.Derivation.
func NewDeriver(d *derive.Derivation) Deriver { return derivation{d: d} }

func (a derivation) Reset(ctx context.Context, safe eth.L2BlockRef) error {
	return a.d.Reset(ctx, safe)
}
func (a derivation) Origin() eth.L1BlockRef { return a.d.Origin() }
func (a derivation) SetL1Limit(n uint64)    { a.d.SetL1Limit(n) }
func (a derivation) OnInvalidPayload()      { a.d.OnInvalidPayload() }

func (a derivation) Next(ctx context.Context, safe eth.L2BlockRef) (*engine.Derived, error) {
	at, err := a.d.NextAttributes(ctx, safe)
	if err != nil {
		return nil, err
	}
	return &engine.Derived{
		Parent:       at.Parent,
		Attrs:        at.Payload,
		DerivedFrom:  at.DerivedFrom,
		Concluding:   at.Concluding,
		DepositsOnly: at.DepositsOnly,
	}, nil
}
