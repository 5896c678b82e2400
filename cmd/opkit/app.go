package main

import (
	"fmt"
	"log/slog"
	"os"
	"runtime/debug"
	"strings"

	"github.com/urfave/cli/v2"
)

// version is set at link time with -ldflags "-X main.version=...".
var version = "dev"

func newApp() *cli.App {
	return &cli.App{
		Name:                 "opkit",
		Usage:                "OP Stack systems for rollup operators: node, batcher, AltDA server, supervisor, collector",
		Version:              versionString(),
		EnableBashCompletion: true,
		Flags: []cli.Flag{
			&cli.StringFlag{Name: "log.level", Value: "info", Usage: "log level: debug, info, warn, error", EnvVars: envVars("", "log.level")},
			&cli.StringFlag{Name: "log.format", Value: "text", Usage: "log format: text or json", EnvVars: envVars("", "log.format")},
		},
		Before: func(c *cli.Context) error {
			logger, err := newLogger(c.String("log.level"), c.String("log.format"))
			if err != nil {
				return err
			}
			slog.SetDefault(logger)
			return nil
		},
		Commands: []*cli.Command{
			versionCommand(),
			devnetCommand(),
			collectorCommand(),
			nodeCommand(),
			daServerCommand(),
			supervisorCommand(),
			batcherCommand(),
		},
	}
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version",
		Action: func(c *cli.Context) error {
			_, err := fmt.Fprintln(c.App.Writer, "opkit", versionString())
			return err
		},
	}
}

func versionString() string {
	if version != "dev" {
		return version
	}
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		return info.Main.Version
	}
	return version
}

// envVars names the environment variable that sets a flag: OPKIT_<CMD>_<FLAG>, with dots
// and dashes turned into underscores (OPKIT_DA_SERVER_S3_ACCESS_KEY_ID for
// da-server's --s3.access-key-id). Global flags have no command part (OPKIT_LOG_LEVEL).
func envVars(cmd, flag string) []string {
	parts := []string{"OPKIT"}
	if cmd != "" {
		parts = append(parts, cmd)
	}
	parts = append(parts, flag)
	name := strings.ToUpper(strings.Join(parts, "_"))
	return []string{strings.NewReplacer(".", "_", "-", "_").Replace(name)}
}

func newLogger(level, format string) (*slog.Logger, error) {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log.level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lvl}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(os.Stderr, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(os.Stderr, opts)), nil
	default:
		return nil, fmt.Errorf("--log.format: %q is not text or json", format)
	}
}
