package engine

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/rpc"
)

// Error classes. Every error the engine returns wraps exactly one of them.
var (
	// ErrSyncing: the execution client does not have the parent state yet (SYNCING or
	// ACCEPTED). Wait and retry; nothing is wrong with the payload.
	ErrSyncing = errors.New("execution engine is syncing")
	// ErrInvalid: the engine rejected a payload, attributes or forkchoice state. Retrying
	// the same input cannot succeed; the caller must drop it.
	ErrInvalid = errors.New("execution engine rejected the input")
	// ErrTemporary: the call failed in transit (connection refused, timeout, engine
	// restarting) or the engine forgot a payload it was building. Retry with backoff.
	ErrTemporary = errors.New("execution engine call failed")
)

// Engine API error codes (execution-apis, and the OP Stack's use of them).
const (
	codeUnknownPayload           = -38001
	codeInvalidForkchoiceState   = -38002
	codeInvalidPayloadAttributes = -38003
	codeInvalidParams            = -32602
)

// callTimeout bounds one Engine API call: block building on a loaded machine takes well
// under a second, and a hung engine must not stall the node's event loop.
const callTimeout = 10 * time.Second

// Client is a typed Engine API client (the V3/V4 methods of an Isthmus chain) plus the
// eth namespace the same authenticated endpoint serves.
type Client struct {
	rpc *rpc.Client
	Eth *ethclient.Client
}

// Dial connects to an Engine API endpoint with a JWT secret. HTTP connections are
// re-established per request, so an engine restart needs no reconnect.
func Dial(ctx context.Context, url string, secret [32]byte) (*Client, error) {
	c, err := rpc.DialOptions(ctx, url, rpc.WithHTTPAuth(node.NewJWTAuth(secret)))
	if err != nil {
		return nil, fmt.Errorf("dial engine %s: %w", url, err)
	}
	return &Client{rpc: c, Eth: ethclient.NewClient(c)}, nil
}

// Close releases the connection.
func (c *Client) Close() { c.rpc.Close() }

func (c *Client) call(ctx context.Context, result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	if err := c.rpc.CallContext(ctx, result, method, args...); err != nil {
		return classifyRPCError(method, err)
	}
	return nil
}

// classifyRPCError sorts an RPC failure: the engine's own refusals are ErrInvalid (or,
// for a forgotten payload ID, ErrTemporary: the block can be rebuilt); anything else
// (transport, timeout, server restarting) is ErrTemporary.
func classifyRPCError(method string, err error) error {
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) {
		switch rpcErr.ErrorCode() {
		case codeInvalidForkchoiceState, codeInvalidPayloadAttributes, codeInvalidParams:
			return fmt.Errorf("%s: %w: %w", method, ErrInvalid, err)
		case codeUnknownPayload:
			return fmt.Errorf("%s: %w: unknown payload: %w", method, ErrTemporary, err)
		}
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, context.DeadlineExceeded) {
		return fmt.Errorf("%s: %w: %w", method, ErrTemporary, err)
	}
	return fmt.Errorf("%s: %w: %w", method, ErrTemporary, err)
}

// statusError turns a non-VALID payload status into an error of the right class.
func statusError(method string, st engine.PayloadStatusV1) error {
	switch st.Status {
	case engine.VALID:
		return nil
	case engine.SYNCING, engine.ACCEPTED:
		return fmt.Errorf("%s: %w (status %s)", method, ErrSyncing, st.Status)
	case engine.INVALID, "INVALID_BLOCK_HASH":
		msg := ""
		if st.ValidationError != nil {
			msg = *st.ValidationError
		}
		return fmt.Errorf("%s: %w: status %s: %s", method, ErrInvalid, st.Status, msg)
	default:
		return fmt.Errorf("%s: %w: unknown status %q", method, ErrTemporary, st.Status)
	}
}

// ForkchoiceUpdated calls engine_forkchoiceUpdatedV3; with attributes it starts building
// a payload and returns its ID.
func (c *Client) ForkchoiceUpdated(ctx context.Context, fc engine.ForkchoiceStateV1, attrs *engine.PayloadAttributes) (*engine.PayloadID, error) {
	var resp engine.ForkChoiceResponse
	if err := c.call(ctx, &resp, "engine_forkchoiceUpdatedV3", fc, attrs); err != nil {
		return nil, err
	}
	if err := statusError("engine_forkchoiceUpdatedV3", resp.PayloadStatus); err != nil {
		return nil, err
	}
	if attrs != nil && resp.PayloadID == nil {
		return nil, fmt.Errorf("engine_forkchoiceUpdatedV3: %w: VALID with attributes but no payload ID", ErrTemporary)
	}
	return resp.PayloadID, nil
}

// GetPayload calls engine_getPayloadV4.
func (c *Client) GetPayload(ctx context.Context, id engine.PayloadID) (*engine.ExecutionPayloadEnvelope, error) {
	var env engine.ExecutionPayloadEnvelope
	if err := c.call(ctx, &env, "engine_getPayloadV4", id); err != nil {
		return nil, err
	}
	if env.ExecutionPayload == nil {
		return nil, fmt.Errorf("engine_getPayloadV4: %w: empty envelope", ErrTemporary)
	}
	return &env, nil
}

// NewPayload calls engine_newPayloadV4. OP chains carry no blobs and no execution
// requests, so both lists are sent empty.
func (c *Client) NewPayload(ctx context.Context, payload *engine.ExecutableData, beaconRoot common.Hash) error {
	var st engine.PayloadStatusV1
	if err := c.call(ctx, &st, "engine_newPayloadV4", payload, []common.Hash{}, beaconRoot, []hexutil.Bytes{}); err != nil {
		return err
	}
	return statusError("engine_newPayloadV4", st)
}

// StorageRoot returns an account's storage root at a block, from eth_getProof.
func (c *Client) StorageRoot(ctx context.Context, account common.Address, blockHash common.Hash) (common.Hash, error) {
	var proof struct {
		StorageHash common.Hash `json:"storageHash"`
	}
	if err := c.call(ctx, &proof, "eth_getProof", account, []string{}, blockHash); err != nil {
		return common.Hash{}, err
	}
	return proof.StorageHash, nil
}
