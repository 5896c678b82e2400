package engine

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"net/http"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/beacon/engine"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/types"
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
	// ErrUnsupported: the engine does not serve the method or fork the chain needs
	// (unsupported fork, method not found). No retry can fix that: the node must stop.
	ErrUnsupported = errors.New("execution engine does not support the call")
)

// Engine API error codes (execution-apis, and the OP Stack's use of them).
const (
	codeUnknownPayload           = -38001
	codeInvalidForkchoiceState   = -38002
	codeInvalidPayloadAttributes = -38003
	codeTooLargeRequest          = -38004
	codeUnsupportedFork          = -38005
	codeInvalidParams            = -32602
	codeMethodNotFound           = -32601
	codeParseError               = -32700
	codeInvalidRequest           = -32600
)

// callTimeout bounds one Engine API call: block building on a loaded machine takes well
// under a second, and a hung engine must not stall the node's event loop.
const callTimeout = 10 * time.Second

// Client is a typed Engine API client (the V3/V4 methods of an Isthmus chain) plus the
// eth namespace the same authenticated endpoint serves.
type Client struct {
	rpc *rpc.Client
	// direct makes the per-block Engine API calls on an HTTP endpoint (httprpc.go);
	// nil for websocket and IPC endpoints, which go through rpc.
	direct *httpRPC
	Eth    *ethclient.Client
	// CallTimeout bounds every call; zero means callTimeout.
	CallTimeout time.Duration
}

func (c *Client) timeout() time.Duration {
	if c.CallTimeout > 0 {
		return c.CallTimeout
	}
	return callTimeout
}

// Dial connects to an Engine API endpoint with a JWT secret. HTTP connections are
// re-established per request, so an engine restart needs no reconnect. Responses are
// asked for uncompressed: the execution client sits next to the node, and gzip would
// cost both sides CPU on every payload (a full block of transactions each way) to save
// bytes on a loopback or local link.
func Dial(ctx context.Context, url string, secret [32]byte) (*Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.DisableCompression = true
	hc := &http.Client{Transport: tr}
	auth := node.NewJWTAuth(secret)
	c, err := rpc.DialOptions(ctx, url, rpc.WithHTTPAuth(auth), rpc.WithHTTPClient(hc))
	if err != nil {
		return nil, fmt.Errorf("dial engine %s: %w", url, err)
	}
	cl := &Client{rpc: c, Eth: ethclient.NewClient(c)}
	if isHTTP(url) {
		cl.direct = &httpRPC{url: url, client: hc, auth: auth}
	}
	return cl, nil
}

// Close releases the connection.
func (c *Client) Close() { c.rpc.Close() }

func (c *Client) call(ctx context.Context, result any, method string, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if err := c.rpc.CallContext(ctx, result, method, args...); err != nil {
		return classifyRPCError(method, err)
	}
	return nil
}

// engineCall is call for the per-block Engine API methods: on an HTTP endpoint each
// argument is encoded once (its own MarshalJSON) and posted directly.
func (c *Client) engineCall(ctx context.Context, result any, method string, args ...any) error {
	if c.direct == nil {
		return c.call(ctx, result, method, args...)
	}
	params := make([][]byte, len(args))
	for i, a := range args {
		p, err := encodeParam(a)
		if err != nil {
			return fmt.Errorf("%s: %w: encode parameter %d: %w", method, ErrInvalid, i, err)
		}
		params[i] = p
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	if err := c.direct.call(ctx, result, method, params...); err != nil {
		return classifyRPCError(method, err)
	}
	return nil
}

// classifyRPCError sorts an RPC failure. The engine's own refusals of the input are
// ErrInvalid; a forgotten payload ID is ErrTemporary (the block can be rebuilt); an
// unsupported fork or method is ErrUnsupported; any other answer with an Engine API
// error code (-38xxx) is a refusal too, since retrying the same call gets the same
// answer. Transport failures, timeouts and generic server errors are ErrTemporary.
func classifyRPCError(method string, err error) error {
	var rpcErr rpc.Error
	if errors.As(err, &rpcErr) {
		code := rpcErr.ErrorCode()
		switch {
		case code == codeUnknownPayload:
			return fmt.Errorf("%s: %w: unknown payload: %w", method, ErrTemporary, err)
		case code == codeUnsupportedFork, code == codeMethodNotFound:
			return fmt.Errorf("%s: %w: %w", method, ErrUnsupported, err)
		case code == codeInvalidForkchoiceState, code == codeInvalidPayloadAttributes, code == codeInvalidParams,
			code == codeTooLargeRequest, code == codeParseError, code == codeInvalidRequest:
			return fmt.Errorf("%s: %w: %w", method, ErrInvalid, err)
		case code <= -38000 && code > -39000:
			return fmt.Errorf("%s: %w: unknown Engine API error code %d: %w", method, ErrInvalid, code, err)
		}
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
	var a any // a nil *PayloadAttributes must go out as null
	if attrs != nil {
		a = attrs
	}
	if err := c.engineCall(ctx, &resp, "engine_forkchoiceUpdatedV3", fc, a); err != nil {
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
	if err := c.engineCall(ctx, &env, "engine_getPayloadV4", id); err != nil {
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
	if err := c.engineCall(ctx, &st, "engine_newPayloadV4", payload, []common.Hash{}, beaconRoot, []hexutil.Bytes{}); err != nil {
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

// ethCall runs one eth-namespace read with the call deadline and sorts its failure:
// "not found" stays ethereum.NotFound (wrapped, so errors.Is finds it), anything else
// is classified like an Engine API failure.
func ethCall[T any](ctx context.Context, c *Client, what string, fn func(context.Context) (T, error)) (T, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout())
	defer cancel()
	v, err := fn(ctx)
	if err != nil {
		var zero T
		if errors.Is(err, ethereum.NotFound) {
			return zero, fmt.Errorf("%s: %w", what, err)
		}
		return zero, classifyRPCError(what, err)
	}
	return v, nil
}

// BlockByNumber reads a canonical block (number or label) with the call deadline.
func (c *Client) BlockByNumber(ctx context.Context, n *big.Int) (*types.Block, error) {
	return ethCall(ctx, c, fmt.Sprintf("eth_getBlockByNumber %v", n), func(ctx context.Context) (*types.Block, error) {
		return c.Eth.BlockByNumber(ctx, n)
	})
}

// BlockByHash reads a block with the call deadline.
func (c *Client) BlockByHash(ctx context.Context, h common.Hash) (*types.Block, error) {
	return ethCall(ctx, c, "eth_getBlockByHash "+h.Hex(), func(ctx context.Context) (*types.Block, error) {
		return c.Eth.BlockByHash(ctx, h)
	})
}

// HeaderByHash reads a header with the call deadline.
func (c *Client) HeaderByHash(ctx context.Context, h common.Hash) (*types.Header, error) {
	return ethCall(ctx, c, "eth_getHeaderByHash "+h.Hex(), func(ctx context.Context) (*types.Header, error) {
		return c.Eth.HeaderByHash(ctx, h)
	})
}
