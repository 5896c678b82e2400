package s3store

import (
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"

	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/credentials"

	"github.com/opkit/opkit/altda/store"
)

// Config locates the bucket.
type Config struct {
	Endpoint        string // host:port, without scheme
	Bucket          string
	Prefix          string // object key prefix, e.g. "altda/"
	AccessKeyID     string
	SecretAccessKey string
	Secure          bool // https
	// MaxObjectBytes bounds a read so that a foreign object cannot exhaust memory.
	MaxObjectBytes int64
}

// Store is an S3-backed store.Store.
type Store struct {
	cfg       Config
	client    *minio.Client
	transport *http.Transport
}

// Open connects to the endpoint and creates the bucket when it does not exist.
func Open(ctx context.Context, cfg Config) (*Store, error) {
	if cfg.Endpoint == "" {
		return nil, errors.New("s3: endpoint is required")
	}
	if cfg.Bucket == "" {
		return nil, errors.New("s3: bucket is required")
	}
	if cfg.MaxObjectBytes <= 0 {
		cfg.MaxObjectBytes = 64 << 20
	}
	tr, err := minio.DefaultTransport(cfg.Secure)
	if err != nil {
		return nil, fmt.Errorf("s3: transport: %w", err)
	}
	tr.Proxy = nil
	tr.MaxIdleConnsPerHost = 64
	client, err := minio.New(cfg.Endpoint, &minio.Options{
		Creds:     credentials.NewStaticV4(cfg.AccessKeyID, cfg.SecretAccessKey, ""),
		Secure:    cfg.Secure,
		Transport: tr,
		// The server has its own answer to a failing store (the breaker, the repair
		// queue); minio-go's default of 10 retries with backoff would hide an outage
		// behind ten seconds of latency per request.
		MaxRetries: 2,
	})
	if err != nil {
		return nil, fmt.Errorf("s3: client for %s: %w", cfg.Endpoint, err)
	}
	s := &Store{cfg: cfg, client: client, transport: tr}
	exists, err := client.BucketExists(ctx, cfg.Bucket)
	if err != nil {
		return nil, fmt.Errorf("s3: check bucket %q at %s: %w", cfg.Bucket, cfg.Endpoint, classify(err))
	}
	if !exists {
		if err := client.MakeBucket(ctx, cfg.Bucket, minio.MakeBucketOptions{}); err != nil {
			// Another replica may have created it in the meantime.
			if again, err2 := client.BucketExists(ctx, cfg.Bucket); err2 != nil || !again {
				return nil, fmt.Errorf("s3: create bucket %q: %w", cfg.Bucket, classify(err))
			}
		}
	}
	return s, nil
}

func (s *Store) Name() string { return "s3" }

func (s *Store) object(key []byte) string { return s.cfg.Prefix + hex.EncodeToString(key) }

func (s *Store) Get(ctx context.Context, key []byte) ([]byte, error) {
	obj, err := s.client.GetObject(ctx, s.cfg.Bucket, s.object(key), minio.GetObjectOptions{})
	if err != nil {
		return nil, fmt.Errorf("s3 get: %w", classify(err))
	}
	defer obj.Close()
	// The first read is where a missing object shows up.
	data, err := io.ReadAll(io.LimitReader(obj, s.cfg.MaxObjectBytes+1))
	if err != nil {
		return nil, fmt.Errorf("s3 get: %w", classify(err))
	}
	if int64(len(data)) > s.cfg.MaxObjectBytes {
		return nil, fmt.Errorf("s3 get: object is over %d bytes", s.cfg.MaxObjectBytes)
	}
	return data, nil
}

func (s *Store) Has(ctx context.Context, key []byte) (bool, error) {
	_, err := s.client.StatObject(ctx, s.cfg.Bucket, s.object(key), minio.StatObjectOptions{})
	if err == nil {
		return true, nil
	}
	err = classify(err)
	if errors.Is(err, store.ErrNotFound) {
		return false, nil
	}
	return false, fmt.Errorf("s3 stat: %w", err)
}

// Put returns once S3 has acknowledged the object, which S3 does only after it is durable.
func (s *Store) Put(ctx context.Context, key, value []byte) error {
	_, err := s.client.PutObject(ctx, s.cfg.Bucket, s.object(key), bytes.NewReader(value), int64(len(value)),
		minio.PutObjectOptions{ContentType: "application/octet-stream", DisableMultipart: true})
	if err != nil {
		return fmt.Errorf("s3 put: %w", classify(err))
	}
	return nil
}

func (s *Store) Ping(ctx context.Context) error {
	ok, err := s.client.BucketExists(ctx, s.cfg.Bucket)
	if err != nil {
		return fmt.Errorf("s3 ping: %w", classify(err))
	}
	if !ok {
		return fmt.Errorf("s3 ping: bucket %q is gone: %w", s.cfg.Bucket, store.ErrUnavailable)
	}
	return nil
}

func (s *Store) Close() error {
	// minio-go holds nothing but idle connections, which belong to our transport.
	s.transport.CloseIdleConnections()
	return nil
}

// classify maps S3 answers to the store error kinds.
func classify(err error) error {
	if err == nil {
		return nil
	}
	resp := minio.ToErrorResponse(err)
	switch {
	case resp.Code == "NoSuchKey" || resp.StatusCode == http.StatusNotFound && resp.Code != "NoSuchBucket":
		return fmt.Errorf("%w: %w", store.ErrNotFound, err)
	case resp.StatusCode == http.StatusServiceUnavailable || resp.StatusCode == http.StatusTooManyRequests ||
		resp.Code == "SlowDown" || resp.Code == "XMinioServerNotInitialized":
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	var netErr net.Error
	if errors.As(err, &netErr) || errors.Is(err, io.ErrUnexpectedEOF) || strings.Contains(err.Error(), "connection refused") {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}
