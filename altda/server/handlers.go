package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/opkit/opkit/altda"
	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/store"
)

// Handler serves every route. It never panics on input: every path through it ends in a
// status code and, for errors, a JSON body.
func (s *Server) Handler() http.Handler {
	metricsHandler := promhttp.HandlerFor(s.reg, promhttp.HandlerOpts{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rw := &statusWriter{ResponseWriter: w, code: http.StatusOK}
		route := s.route(rw, r, metricsHandler)
		s.m.requests.WithLabelValues(route, strconv.Itoa(rw.code)).Inc()
		s.m.duration.WithLabelValues(route).Observe(time.Since(start).Seconds())
	})
}

// route dispatches and returns the route label for metrics.
func (s *Server) route(w http.ResponseWriter, r *http.Request, metricsHandler http.Handler) string {
	p := r.URL.Path
	switch {
	case p == "/put" || p == "/put/":
		if allow(w, r, http.MethodPost) {
			s.handlePut(w, r, nil)
		}
		return "put"
	case strings.HasPrefix(p, "/put/"):
		if allow(w, r, http.MethodPost) {
			comm, err := altda.ParseCommitment(p[len("/put/"):])
			if err != nil {
				writeError(w, http.StatusBadRequest, "", err.Error())
				return "put_commitment"
			}
			s.handlePut(w, r, comm)
		}
		return "put_commitment"
	case strings.HasPrefix(p, "/get/"):
		if allow(w, r, http.MethodGet, http.MethodHead) {
			s.handleGet(w, r, p[len("/get/"):])
		}
		return "get"
	case p == "/health":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			s.handleHealth(w)
		}
		return "health"
	case p == "/metrics":
		if allow(w, r, http.MethodGet, http.MethodHead) {
			metricsHandler.ServeHTTP(w, r)
		}
		return "metrics"
	case p == "/admin/faults" && s.cfg.FaultsAdmin:
		if allow(w, r, http.MethodGet, http.MethodPut) {
			s.handleFaults(w, r)
		}
		return "admin_faults"
	default:
		writeError(w, http.StatusNotFound, "", "no such route: "+p)
		return "other"
	}
}

func allow(w http.ResponseWriter, r *http.Request, methods ...string) bool {
	for _, m := range methods {
		if r.Method == m {
			return true
		}
	}
	w.Header().Set("Allow", strings.Join(methods, ", "))
	writeError(w, http.StatusMethodNotAllowed, "", fmt.Sprintf("method %s is not allowed here", r.Method))
	return false
}

// putResult is the outcome of one coalesced write.
type putResult struct {
	status     int // 200, 201, 503, 500
	message    string
	retryAfter time.Duration
}

func (s *Server) handlePut(w http.ResponseWriter, r *http.Request, comm altda.Commitment) {
	s.putCount.Add(1)
	// While the breaker is open the answer is known: skip reading and hashing the body,
	// which is most of a PUT's cost. (Only a read: a half-open trial is claimed in store.)
	if s.breaker.State() == breaker.Open {
		if wait := s.breaker.RetryAfter(); wait > 0 {
			writeUnavailable(w, "primary store is failing; writes are paused", wait)
			return
		}
	}
	body, err := readBody(w, r, s.cfg.MaxInputBytes)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		writeError(w, http.StatusBadRequest, "too_large", fmt.Sprintf("body is over the %d-byte input limit", s.cfg.MaxInputBytes))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, "", "reading body: "+err.Error())
		return
	case len(body) == 0:
		writeError(w, http.StatusBadRequest, "empty", "empty body")
		return
	}
	echo := comm == nil // /put answers with the commitment it made
	switch {
	case comm == nil && s.cfg.GenericCommitment:
		comm = altda.ContentAddressedGeneric(s.cfg.DALayerByte, body)
	case comm == nil:
		comm = altda.Keccak256Commitment(body)
	default:
		// Only commitments the server can check are stored: keccak256 and its own
		// content-addressed generic form. Anything else could never be verified on read.
		if err := comm.Verify(body); err != nil {
			writeError(w, http.StatusBadRequest, "mismatch", err.Error())
			return
		}
	}
	s.m.putBytes.Add(float64(len(body)))
	res, _, _ := s.puts.do(string(comm), func() (putResult, error) {
		// Detached from the request: a client hanging up must not leave the stores
		// half-written, and a coalesced caller may still be waiting on this write.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.WriteTimeout)
		defer cancel()
		return s.store(ctx, comm, body), nil
	})
	switch res.status {
	case http.StatusOK:
		if echo {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Header().Set("Content-Length", strconv.Itoa(len(comm)))
			w.WriteHeader(http.StatusOK)
			_, _ = w.Write(comm)
			return
		}
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusOK)
	case http.StatusCreated:
		writeJSON(w, http.StatusCreated, map[string]string{"commitment": comm.String(), "status": "partial", "message": res.message})
	case http.StatusServiceUnavailable:
		writeUnavailable(w, res.message, res.retryAfter)
	default:
		writeError(w, res.status, "", res.message)
	}
}

// store writes body under comm to the primary and every secondary. It skips writes that
// are already durable, so a resend costs a lookup and no second write.
func (s *Server) store(ctx context.Context, comm altda.Commitment, body []byte) putResult {
	if ok, wait := s.breaker.Allow(); !ok {
		return putResult{status: http.StatusServiceUnavailable, message: "primary store is failing; writes are paused", retryAfter: wait}
	}
	key := []byte(comm)
	had, err := s.primary.store.Has(ctx, key)
	if err != nil {
		// Cannot tell; writing again is safe because writes are idempotent.
		s.log.Debug("primary lookup failed before write", "commitment", comm, "err", err)
		had = false
	}
	if !had {
		if err := s.primary.store.Put(ctx, key, body); err != nil {
			s.breaker.Failure()
			s.log.Warn("primary write failed", "commitment", comm, "err", err)
			if errors.Is(err, store.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) {
				return putResult{status: http.StatusServiceUnavailable, message: "primary store unavailable: " + err.Error(),
					retryAfter: max(time.Second, s.breaker.RetryAfter())}
			}
			return putResult{status: http.StatusInternalServerError, message: "primary store write failed: " + err.Error()}
		}
	}
	s.breaker.Success()
	s.cache.add(key, body)

	// The secondaries are written at the same time, each under its own deadline: the
	// answer waits for the slowest of them, and no longer than SecondaryTimeout. A
	// secondary that misses it is queued for repair like one that failed, and the
	// client gets its 201 now rather than when a hung S3 finally gives up.
	outcomes := make([]secondaryOutcome, len(s.secondaries))
	var wg sync.WaitGroup
	for i, sec := range s.secondaries {
		wg.Add(1)
		go func() {
			defer wg.Done()
			outcomes[i] = s.writeSecondary(ctx, sec, key, body, had)
		}()
	}
	wg.Wait()
	var failed []string
	for i, o := range outcomes {
		sec := s.secondaries[i]
		switch {
		case o.internal != nil:
			return putResult{status: http.StatusInternalServerError, message: o.internal.Error()}
		case o.failed != nil:
			s.log.Warn("secondary write failed; queued for repair", "store", sec.label, "commitment", comm, "err", o.failed)
			failed = append(failed, fmt.Sprintf("%s: %v", sec.label, o.failed))
		}
	}
	if len(failed) > 0 {
		return putResult{status: http.StatusCreated, message: "stored in the primary; secondary write queued for retry, resend to complete (" + strings.Join(failed, "; ") + ")"}
	}
	return putResult{status: http.StatusOK}
}

// secondaryOutcome: failed is a write the secondary missed, now queued for repair;
// internal is a failure of the server itself (the repair queue), which is a 500.
type secondaryOutcome struct {
	failed, internal error
}

// writeSecondary makes sure sec holds key within SecondaryTimeout. A store call that
// does not return by then is left to finish on its own (tracked, so Close waits for
// it); the write is queued for repair as if it had failed.
func (s *Server) writeSecondary(ctx context.Context, sec role, key, body []byte, primaryHad bool) secondaryOutcome {
	sctx, cancel := context.WithTimeout(ctx, s.cfg.SecondaryTimeout)
	defer cancel()
	done := make(chan secondaryOutcome, 1)
	s.callsMu.Lock()
	if s.closing {
		// Only after a shutdown timed out with this request still running.
		s.callsMu.Unlock()
		return secondaryOutcome{internal: errors.New("the server is shutting down")}
	}
	s.storeCalls.Add(1)
	s.callsMu.Unlock()
	go func() {
		defer s.storeCalls.Done()
		ok, err := s.secondaryDurable(sctx, sec, key, primaryHad)
		if err != nil {
			done <- secondaryOutcome{internal: err}
			return
		}
		if ok {
			done <- secondaryOutcome{}
			return
		}
		done <- secondaryOutcome{failed: sec.store.Put(sctx, key, body)}
	}()
	var o secondaryOutcome
	select {
	case o = <-done:
	case <-sctx.Done():
		o = secondaryOutcome{failed: fmt.Errorf("no answer within %s: %w", s.cfg.SecondaryTimeout, sctx.Err())}
	}
	switch {
	case o.internal != nil:
		return o
	case o.failed != nil:
		if qerr := s.queue.Add(sec.name, key, body); qerr != nil {
			return secondaryOutcome{internal: fmt.Errorf("%s write failed (%v) and could not be queued: %w", sec.label, o.failed, qerr)}
		}
		return o
	case primaryHad:
		// A resend completed a pending write (or found it complete).
		pending, err := s.queue.Pending(sec.name, key)
		if err != nil {
			return secondaryOutcome{internal: err}
		}
		if pending {
			if err := s.queue.Done(sec.name, key); err != nil {
				return secondaryOutcome{internal: err}
			}
			s.m.repaired.WithLabelValues(sec.name).Inc()
		}
	}
	return o
}

// secondaryDurable reports whether a secondary already holds key. For a fresh write it
// does not; for data the primary already had it does unless a repair is pending or the
// secondary says otherwise (a crash between the primary write and the queue entry).
func (s *Server) secondaryDurable(ctx context.Context, sec role, key []byte, primaryHad bool) (bool, error) {
	if !primaryHad {
		return false, nil
	}
	pending, err := s.queue.Pending(sec.name, key)
	if err != nil {
		return false, err
	}
	if pending {
		return false, nil
	}
	has, err := sec.store.Has(ctx, key)
	return err == nil && has, nil
}

func (s *Server) handleGet(w http.ResponseWriter, r *http.Request, hexComm string) {
	s.getCount.Add(1)
	comm, err := altda.ParseCommitment(hexComm)
	if err != nil {
		writeError(w, http.StatusBadRequest, "", err.Error())
		return
	}
	key := []byte(comm)
	if data, ok := s.cache.get(key); ok {
		s.m.cacheHits.Inc()
		writeData(w, r, data)
		return
	}
	res, err, shared := s.gets.do(string(comm), func() ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), s.cfg.ReadTimeout)
		defer cancel()
		return s.fetch(ctx, comm)
	})
	if shared {
		s.m.coalesced.Inc()
	}
	switch {
	case err == nil:
		writeData(w, r, res)
	case errors.Is(err, store.ErrNotFound):
		// Empty body: op-node reads 404 as "not stored", nothing more.
		w.Header().Set("Content-Length", "0")
		w.WriteHeader(http.StatusNotFound)
	default:
		// Not 404: op-node would treat the input as missing; it retries anything else.
		// Not 503 either: that is the write path's "fail over to L1" signal, and a
		// reader that understands it must not take a read failure for one.
		writeError(w, http.StatusInternalServerError, "", err.Error())
	}
}

// fetch reads from the stores in order (secondaries first while the primary's breaker
// is open) and returns the first copy that matches the commitment: hashed against it,
// unless the store checks its reads itself (it only ever held verified bytes).
func (s *Server) fetch(ctx context.Context, comm altda.Commitment) ([]byte, error) {
	order := append([]role{s.primary}, s.secondaries...)
	if s.breaker.State() == breaker.Open {
		order = append(append([]role{}, s.secondaries...), s.primary)
	}
	var errs []error
	for _, r := range order {
		data, err := r.store.Get(ctx, comm)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if errors.Is(err, store.ErrCorrupt) {
			s.m.verifyFailed.WithLabelValues(r.label).Inc()
			s.log.Error("stored bytes are corrupt; trying the next store", "store", r.label, "commitment", comm, "err", err)
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", r.label, err))
			continue
		}
		if comm.Verifiable() && !r.checked {
			if err := comm.Verify(data); err != nil {
				s.m.verifyFailed.WithLabelValues(r.label).Inc()
				s.log.Error("stored bytes do not match their commitment; trying the next store", "store", r.label, "commitment", comm, "err", err)
				errs = append(errs, fmt.Errorf("%s: %w", r.label, err))
				continue
			}
		}
		s.cache.add(comm, data)
		return data, nil
	}
	if len(errs) == 0 {
		return nil, store.ErrNotFound
	}
	return nil, fmt.Errorf("no store could serve the commitment: %w", errors.Join(errs...))
}

func (s *Server) handleHealth(w http.ResponseWriter) {
	// Stores come from the last probe; the breaker is read live, since writes move it
	// between probes.
	rep := *s.health.Load()
	if st := s.breaker.State(); st != breaker.Closed {
		rep.Breaker, rep.Status = st.String(), "unavailable"
		rep.RetryAfter = retrySeconds(s.breaker.RetryAfter())
	} else if rep.Breaker != breaker.Closed.String() {
		rep.Breaker, rep.RetryAfter = st.String(), 0
		if rep.Status == "unavailable" && len(rep.Stores) > 0 && rep.Stores[0].Healthy {
			rep.Status = "ok"
		}
	}
	code := http.StatusOK
	if rep.Status == "unavailable" {
		code = http.StatusServiceUnavailable
	}
	writeJSON(w, code, &rep)
}

type faultsDoc struct {
	Primary   *store.Fault `json:"primary"`
	Secondary *store.Fault `json:"secondary"`
}

func (s *Server) handleFaults(w http.ResponseWriter, r *http.Request) {
	if r.Method == http.MethodPut {
		dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<10))
		dec.DisallowUnknownFields()
		var doc faultsDoc
		if err := dec.Decode(&doc); err != nil {
			writeError(w, http.StatusBadRequest, "", "fault document: "+err.Error())
			return
		}
		var p, sec store.Fault
		if doc.Primary != nil {
			p = *doc.Primary
		}
		if doc.Secondary != nil {
			sec = *doc.Secondary
		}
		for _, f := range []store.Fault{p, sec} {
			if err := f.Validate(); err != nil {
				writeError(w, http.StatusBadRequest, "", "fault document: "+err.Error())
				return
			}
		}
		s.primary.faulty.SetFault(p)
		for _, r := range s.secondaries {
			r.faulty.SetFault(sec)
		}
		s.log.Warn("fault injection changed", "primary", p.Normalize(), "secondary", sec.Normalize())
	}
	p := s.primary.faulty.Fault()
	doc := faultsDoc{Primary: &p}
	if len(s.secondaries) > 0 {
		sec := s.secondaries[0].faulty.Fault()
		doc.Secondary = &sec
	}
	writeJSON(w, http.StatusOK, doc)
}

// firstBodyBuffer is where a PUT body's buffer starts.
const firstBodyBuffer = 8 << 10

// readBody reads at most limit bytes. The buffer grows with the bytes that arrive,
// doubling up to the declared Content-Length: a client that declares 130 KB and then
// sends nothing holds 8 KB, not 130 KB (ten thousand such clients would otherwise
// reserve over a gigabyte). An honest client's body still ends in one buffer of exactly
// its length, after a few doublings.
func readBody(w http.ResponseWriter, r *http.Request, limit int) ([]byte, error) {
	if r.ContentLength > int64(limit) {
		return nil, &http.MaxBytesError{Limit: int64(limit)}
	}
	body := http.MaxBytesReader(w, r.Body, int64(limit))
	// The most the buffer must hold: the declared length, or the limit, past which
	// the reader fails.
	most := int64(limit)
	if r.ContentLength >= 0 {
		most = r.ContentLength
	}
	buf := make([]byte, 0, min(firstBodyBuffer, most))
	for int64(len(buf)) < most {
		if len(buf) == cap(buf) {
			buf = slices.Grow(buf, int(min(int64(cap(buf)), most-int64(len(buf)))))
		}
		n, err := body.Read(buf[len(buf):min(int64(cap(buf)), most)])
		buf = buf[:len(buf)+n]
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	if r.ContentLength >= 0 && int64(len(buf)) < r.ContentLength {
		return nil, io.ErrUnexpectedEOF
	}
	// Past the declared length (or the limit) there must be nothing.
	var one [1]byte
	n, err := body.Read(one[:])
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge):
		return nil, err
	case n > 0:
		return nil, errors.New("body is longer than its Content-Length")
	case err != nil && !errors.Is(err, io.EOF):
		return nil, err
	}
	return buf, nil
}

func writeData(w http.ResponseWriter, r *http.Request, data []byte) {
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(data)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(data)
	}
}

func writeUnavailable(w http.ResponseWriter, msg string, retryAfter time.Duration) {
	secs := max(1, retrySeconds(retryAfter))
	w.Header().Set("Retry-After", strconv.FormatInt(secs, 10))
	writeJSON(w, http.StatusServiceUnavailable, map[string]any{"error": msg, "retry_after": secs})
}

// writeError answers {"error": msg} (and a machine-readable code when there is one).
func writeError(w http.ResponseWriter, status int, code, msg string) {
	body := map[string]string{"error": msg}
	if code != "" {
		body["code"] = code
	}
	writeJSON(w, status, body)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		status, b = http.StatusInternalServerError, []byte(`{"error":"encoding the answer failed"}`)
	}
	b = append(b, '\n')
	w.Header().Set("Content-Type", "application/json")
	// The stock client does not close the body of error answers: a Content-Length lets
	// its connection be reused anyway.
	w.Header().Set("Content-Length", strconv.Itoa(len(b)))
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (w *statusWriter) WriteHeader(code int) {
	w.code = code
	w.ResponseWriter.WriteHeader(code)
}
