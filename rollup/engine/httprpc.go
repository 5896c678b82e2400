package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/ethereum/go-ethereum/rpc"
)

// maxAnswerBytes bounds one Engine API answer: a payload of a full block (its
// transactions hex-encoded) is a few MB at most.
const maxAnswerBytes = 64 << 20

// httpRPC makes the three Engine API calls of every block (forkchoiceUpdated, getPayload,
// newPayload) over HTTP with parameters the caller encoded. go-ethereum's RPC client
// re-encodes what it is given (each parameter goes through encoding/json, which compacts
// and validates any MarshalJSON output again) and scans each answer twice; for calls
// that carry a block of transactions each way, once per derived block, that was most of
// the node's own CPU. Same wire format, same JWT auth, same error values: an answer's
// JSON-RPC error is an rpc.Error with its code, an HTTP failure an rpc.HTTPError.
type httpRPC struct {
	url    string
	client *http.Client
	auth   rpc.HTTPAuth
}

// rpcError is a JSON-RPC error answer.
type rpcError struct {
	Code    int             `json:"code"`
	Message string          `json:"message"`
	Data    json.RawMessage `json:"data,omitempty"`
}

func (e *rpcError) Error() string  { return e.Message }
func (e *rpcError) ErrorCode() int { return e.Code }
func (e *rpcError) ErrorData() any {
	if len(e.Data) == 0 {
		return nil
	}
	return string(e.Data)
}

// isHTTP reports whether url is served over HTTP, where httpRPC applies; websocket and
// IPC endpoints keep go-ethereum's client.
func isHTTP(url string) bool {
	return strings.HasPrefix(url, "http://") || strings.HasPrefix(url, "https://")
}

// call posts method with the JSON-encoded params and decodes the result into result.
// A JSON null result leaves result untouched.
func (h *httpRPC) call(ctx context.Context, result any, method string, params ...[]byte) error {
	var body bytes.Buffer
	n := len(method) + 48
	for _, p := range params {
		n += len(p) + 1
	}
	body.Grow(n)
	body.WriteString(`{"jsonrpc":"2.0","id":1,"method":`)
	body.WriteString(strconv.Quote(method))
	body.WriteString(`,"params":[`)
	for i, p := range params {
		if i > 0 {
			body.WriteByte(',')
		}
		body.Write(p)
	}
	body.WriteString("]}")
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, h.url, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	if h.auth != nil {
		if err := h.auth(req.Header); err != nil {
			return fmt.Errorf("engine auth: %w", err)
		}
	}
	resp, err := h.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswerBytes+1))
	if err != nil {
		return err
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return rpc.HTTPError{StatusCode: resp.StatusCode, Status: resp.Status, Body: data}
	}
	if len(data) > maxAnswerBytes {
		return fmt.Errorf("answer over %d bytes", maxAnswerBytes)
	}
	msg := struct {
		Error  *rpcError `json:"error"`
		Result any       `json:"result"`
	}{Result: result}
	if err := json.Unmarshal(data, &msg); err != nil {
		return fmt.Errorf("decode answer: %w", err)
	}
	if msg.Error != nil {
		return msg.Error
	}
	return nil
}

// encodeParam is one parameter's JSON: a type's own MarshalJSON when it has one (not
// passed through encoding/json again), encoding/json for the rest.
func encodeParam(v any) ([]byte, error) {
	if v == nil {
		return []byte("null"), nil
	}
	if m, ok := v.(json.Marshaler); ok {
		return m.MarshalJSON()
	}
	return json.Marshal(v)
}
