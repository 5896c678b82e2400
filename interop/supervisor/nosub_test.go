package supervisor_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/gorilla/websocket"

	"github.com/opkit/opkit/interop/supervisor"
)

// noSubscriptionProxy stands in front of a node's websocket endpoint and makes it look like a
// node that does not offer interop_subscribe: that call is answered "method not found", every
// other message passes through unchanged in both directions.
type noSubscriptionProxy struct {
	srv     *httptest.Server
	refused atomic.Int32
}

func startNoSubscriptionProxy(t *testing.T, upstream string) *noSubscriptionProxy {
	t.Helper()
	p := &noSubscriptionProxy{}
	upgrader := websocket.Upgrader{}
	p.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hdr := http.Header{}
		hdr.Set("Authorization", r.Header.Get("Authorization"))
		up, resp, err := websocket.DefaultDialer.DialContext(r.Context(), upstream, hdr)
		if err != nil {
			status := http.StatusBadGateway
			if resp != nil {
				status = resp.StatusCode
			}
			http.Error(w, err.Error(), status)
			return
		}
		down, err := upgrader.Upgrade(w, r, nil)
		if err != nil {
			up.Close()
			return
		}
		var writeMu sync.Mutex // the node's messages and the refusals share the downstream writer
		pumpDone := make(chan struct{})
		go func() {
			defer close(pumpDone)
			for {
				kind, msg, err := up.ReadMessage()
				if err != nil {
					down.Close()
					return
				}
				writeMu.Lock()
				err = down.WriteMessage(kind, msg)
				writeMu.Unlock()
				if err != nil {
					up.Close()
					return
				}
			}
		}()
		defer func() {
			up.Close()
			<-pumpDone
		}()
		for {
			kind, msg, err := down.ReadMessage()
			if err != nil {
				return
			}
			var req struct {
				ID     json.RawMessage `json:"id"`
				Method string          `json:"method"`
			}
			if json.Unmarshal(msg, &req) == nil && req.Method == "interop_subscribe" {
				p.refused.Add(1)
				refusal := fmt.Sprintf(`{"jsonrpc":"2.0","id":%s,"error":{"code":-32601,"message":"the method interop_subscribe does not exist/is not available"}}`, req.ID)
				writeMu.Lock()
				err = down.WriteMessage(websocket.TextMessage, []byte(refusal))
				writeMu.Unlock()
				if err != nil {
					return
				}
				continue
			}
			if err := up.WriteMessage(kind, msg); err != nil {
				return
			}
		}
	}))
	t.Cleanup(p.srv.Close)
	return p
}

func (p *noSubscriptionProxy) endpoint() string { return "ws" + strings.TrimPrefix(p.srv.URL, "http") }

// TestPullsWhenWebsocketNodeRefusesSubscription: a node reached over websocket that does not
// offer the events subscription is still followed, by pulling its events.
func TestPullsWhenWebsocketNodeRefusesSubscription(t *testing.T) {
	l1 := startL1(t)
	anchor := l1Ref(t, l1, 0)
	node := startNode(t, 901, anchor)
	proxy := startNoSubscriptionProxy(t, node.ws().Endpoint)
	sup := startSupervisor(t, l1, t.TempDir(), []supervisor.NodeConfig{{Endpoint: proxy.endpoint(), Secret: node.secret}}, 901)
	assertPromotedByPulling(t, l1, node, sup)
	if proxy.refused.Load() == 0 {
		t.Fatal("the supervisor never asked to subscribe")
	}
}
