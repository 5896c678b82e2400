package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/opkit/opkit/altda/breaker"
	"github.com/opkit/opkit/altda/server"
	"github.com/opkit/opkit/altda/store"
	"github.com/opkit/opkit/altda/store/pebblestore"
	"github.com/opkit/opkit/altda/store/s3store"
)

func daServerCommand() *cli.Command {
	const cmd = "da-server"
	str := func(name, value, usage string) cli.Flag {
		return &cli.StringFlag{Name: name, Value: value, Usage: usage, EnvVars: envVars(cmd, name)}
	}
	return &cli.Command{
		Name:  cmd,
		Usage: "run the AltDA server: a primary store plus secondaries, 503 failover, 201 partial success",
		Flags: []cli.Flag{
			str("addr", "127.0.0.1", "listen address"),
			&cli.IntFlag{Name: "port", Value: 3100, Usage: "listen port (0 picks a free one)", EnvVars: envVars(cmd, "port")},
			str("datadir", "./opkit-data/da", "where the pebble stores and the repair queue live"),
			str("primary", "pebble", "primary store: pebble, s3 or memory (memory is not durable)"),
			str("secondary", "", "comma-separated secondary stores, each pebble or s3; a write is 200 only once all have it"),
			str("s3.endpoint", "", "S3 endpoint host:port"),
			str("s3.bucket", "", "S3 bucket (created when missing)"),
			str("s3.prefix", "", "S3 object key prefix"),
			str("s3.access-key-id", "", "S3 access key id"),
			str("s3.secret-access-key", "", "S3 secret access key"),
			&cli.BoolFlag{Name: "s3.secure", Usage: "use https for S3", EnvVars: envVars(cmd, "s3.secure")},
			&cli.IntFlag{Name: "max-input-bytes", Value: server.DefaultMaxInputBytes, Usage: "largest accepted preimage (op-node's default max input size)", EnvVars: envVars(cmd, "max-input-bytes")},
			&cli.BoolFlag{Name: "generic-commitment", Usage: "answer POST /put with generic commitments (0x01 ‖ da-layer-byte ‖ keccak256) instead of keccak256 ones", EnvVars: envVars(cmd, "generic-commitment")},
			&cli.UintFlag{Name: "da-layer-byte", Value: 0xff, Usage: "DA layer byte of generic commitments (0..255; [0,127) is for real DA layers)", EnvVars: envVars(cmd, "da-layer-byte")},
			&cli.BoolFlag{Name: "faults.admin", Usage: "enable GET|PUT /admin/faults fault injection (tests and demos only)", EnvVars: envVars(cmd, "faults.admin")},
			&cli.IntFlag{Name: "metrics.port", Value: 7302, Usage: "port of /metrics and /health on --addr (0 picks a free one)", EnvVars: envVars(cmd, "metrics.port")},
			&cli.IntFlag{Name: "breaker.threshold", Value: 5, Usage: "consecutive primary failures that open the breaker", EnvVars: envVars(cmd, "breaker.threshold")},
			&cli.DurationFlag{Name: "breaker.cooldown", Value: 10 * time.Second, Usage: "how long the open breaker answers 503 before a trial", EnvVars: envVars(cmd, "breaker.cooldown")},
			&cli.DurationFlag{Name: "probe-interval", Value: 2 * time.Second, Usage: "store health probe period", EnvVars: envVars(cmd, "probe-interval")},
			&cli.IntFlag{Name: "cache-bytes", Value: 64 << 20, Usage: "read cache size in bytes (0 disables)", EnvVars: envVars(cmd, "cache-bytes")},
			&cli.DurationFlag{Name: "status-interval", Value: 10 * time.Second, Usage: "how often to log a status line", EnvVars: envVars(cmd, "status-interval")},
			&cli.DurationFlag{Name: "retention", Usage: "drop preimages from pebble stores once older than this, a value log segment at a time (0: keep everything)", EnvVars: envVars(cmd, "retention")},
			&cli.DurationFlag{Name: "secondary-timeout", Value: 5 * time.Second, Usage: "deadline of each secondary write; past it the write is queued for repair and the PUT answered 201", EnvVars: envVars(cmd, "secondary-timeout")},
		},
		Action: runDAServer,
	}
}

func runDAServer(c *cli.Context) error {
	log := slog.Default().With("system", "da-server")
	if err := checkDAFlags(c); err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(c.Context, syscall.SIGINT, syscall.SIGTERM)
	defer stop()

	datadir := c.String("datadir")
	if err := os.MkdirAll(datadir, 0o755); err != nil {
		return fmt.Errorf("--datadir: %w", err)
	}
	var opened []store.Store
	closeOpened := func() {
		for _, s := range opened {
			_ = s.Close()
		}
	}
	open := func(kind, role string) (store.Store, error) {
		dir := filepath.Join(datadir, role+"-"+kind)
		s, err := openDAStore(ctx, c, log.With("store", role), kind, dir)
		if err != nil {
			return nil, err
		}
		opened = append(opened, s)
		if p, ok := s.(*pebblestore.Store); ok && p.Recovered() > 0 {
			log.Warn("the last shutdown was not clean: value log records indexed again", "store", role, "dir", dir, "records", p.Recovered())
		}
		return s, nil
	}
	primary, err := open(c.String("primary"), "primary")
	if err != nil {
		return fmt.Errorf("--primary: %w", err)
	}
	var secondaries []store.Store
	for _, kind := range splitList(c.String("secondary")) {
		s, err := open(kind, "secondary")
		if err != nil {
			closeOpened()
			return fmt.Errorf("--secondary: %w", err)
		}
		secondaries = append(secondaries, s)
	}
	cacheBytes := c.Int("cache-bytes")
	if cacheBytes == 0 {
		cacheBytes = -1
	}
	srv, err := server.New(server.Config{
		Addr:              net.JoinHostPort(c.String("addr"), strconv.Itoa(c.Int("port"))),
		Primary:           primary,
		Secondaries:       secondaries,
		RepairDir:         filepath.Join(datadir, "repair"),
		MaxInputBytes:     c.Int("max-input-bytes"),
		GenericCommitment: c.Bool("generic-commitment"),
		DALayerByte:       byte(c.Uint("da-layer-byte")),
		FaultsAdmin:       c.Bool("faults.admin"),
		Breaker:           breaker.Config{Threshold: c.Int("breaker.threshold"), Cooldown: c.Duration("breaker.cooldown")},
		ProbeInterval:     c.Duration("probe-interval"),
		CacheBytes:        cacheBytes,
		CacheTTL:          c.Duration("retention"),
		SecondaryTimeout:  c.Duration("secondary-timeout"),
		Logger:            log,
	})
	if err != nil {
		closeOpened()
		return err
	}
	if err := srv.Start(); err != nil {
		_ = srv.Close(context.Background())
		return err
	}
	metrics, err := startMetricsServer(log, c.String("addr"), c.Int("metrics.port"), srv.Registry(), srv.Handler())
	if err != nil {
		_ = srv.Close(context.Background())
		return err
	}
	secNames := make([]string, len(secondaries))
	for i, s := range secondaries {
		secNames[i] = s.Name()
	}
	log.Info("da-server listening", "url", srv.URL(), "metrics", metrics.URL(),
		"primary", primary.Name(), "secondaries", strings.Join(secNames, ","), "datadir", datadir,
		"generic_commitment", c.Bool("generic-commitment"), "faults_admin", c.Bool("faults.admin"),
		"retention", c.Duration("retention"))

	ticker := time.NewTicker(c.Duration("status-interval"))
	defer ticker.Stop()
	for {
		select {
		case <-ticker.C:
			st := srv.Stats()
			log.Info("status", "puts", st.Puts, "gets", st.Gets, "breaker", st.Breaker, "repair_queue", st.RepairQueue)
		case <-ctx.Done():
			log.Info("shutting down: finishing in-flight requests and flushing stores")
			sctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			err := srv.Close(sctx)
			_ = metrics.Close(sctx)
			if err != nil {
				return fmt.Errorf("stop da-server: %w", err)
			}
			log.Info("da-server stopped")
			return nil
		}
	}
}

func checkDAFlags(c *cli.Context) error {
	switch {
	case c.Int("max-input-bytes") <= 0:
		return errors.New("--max-input-bytes: must be positive")
	case c.Uint("da-layer-byte") > 255:
		return fmt.Errorf("--da-layer-byte: %d does not fit in a byte", c.Uint("da-layer-byte"))
	case c.Duration("status-interval") <= 0:
		return errors.New("--status-interval: must be positive")
	case c.Duration("probe-interval") <= 0:
		return errors.New("--probe-interval: must be positive")
	case c.Duration("breaker.cooldown") <= 0:
		return errors.New("--breaker.cooldown: must be positive")
	case c.Int("breaker.threshold") <= 0:
		return errors.New("--breaker.threshold: must be positive")
	case c.Int("cache-bytes") < 0:
		return errors.New("--cache-bytes: must not be negative")
	case c.Duration("retention") < 0:
		return errors.New("--retention: must not be negative")
	case c.Duration("secondary-timeout") <= 0:
		return errors.New("--secondary-timeout: must be positive")
	}
	primary := c.String("primary")
	switch primary {
	case "pebble", "s3", "memory":
	default:
		return fmt.Errorf("--primary: %q is not pebble, s3 or memory", primary)
	}
	seen := map[string]bool{}
	for _, kind := range splitList(c.String("secondary")) {
		switch {
		case kind != "pebble" && kind != "s3":
			return fmt.Errorf("--secondary: %q is not pebble or s3", kind)
		case kind == "s3" && primary == "s3":
			// One set of --s3.* flags: a secondary would be the same bucket and prefix.
			return errors.New("--secondary: s3 is already the primary (same bucket and prefix)")
		case seen[kind]:
			return fmt.Errorf("--secondary: %s is listed twice", kind)
		}
		seen[kind] = true
	}
	if primary == "s3" || seen["s3"] {
		if c.String("s3.endpoint") == "" || c.String("s3.bucket") == "" {
			return errors.New("--s3.endpoint and --s3.bucket: required when a store is s3")
		}
	}
	return nil
}

func openDAStore(ctx context.Context, c *cli.Context, log *slog.Logger, kind, dir string) (store.Store, error) {
	switch kind {
	case "pebble":
		return pebblestore.OpenWith(dir, pebblestore.Options{Retention: c.Duration("retention"), Logger: log})
	case "memory":
		return store.NewMemory(), nil
	case "s3":
		octx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		return s3store.Open(octx, s3store.Config{
			Endpoint:        c.String("s3.endpoint"),
			Bucket:          c.String("s3.bucket"),
			Prefix:          c.String("s3.prefix"),
			AccessKeyID:     c.String("s3.access-key-id"),
			SecretAccessKey: c.String("s3.secret-access-key"),
			Secure:          c.Bool("s3.secure"),
		})
	}
	return nil, fmt.Errorf("unknown store %q", kind)
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}
