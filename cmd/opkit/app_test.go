package main

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

func TestEnvVarNames(t *testing.T) {
	cases := []struct{ cmd, flag, want string }{
		{"", "log.level", "OPKIT_LOG_LEVEL"},
		{"da-server", "s3.access-key-id", "OPKIT_DA_SERVER_S3_ACCESS_KEY_ID"},
		{"devnet", "l1.block-time", "OPKIT_DEVNET_L1_BLOCK_TIME"},
	}
	for _, c := range cases {
		if got := envVars(c.cmd, c.flag); len(got) != 1 || got[0] != c.want {
			t.Errorf("envVars(%q, %q) = %v, want %s", c.cmd, c.flag, got, c.want)
		}
	}
}

func TestEveryFlagHasItsEnvVar(t *testing.T) {
	app := newApp()
	checkFlags(t, "", app.Flags)
	var walk func(prefix string, cmds []*cli.Command)
	walk = func(prefix string, cmds []*cli.Command) {
		for _, c := range cmds {
			// A nested command's variables carry both names: "collector verify --from"
			// reads OPKIT_COLLECTOR_VERIFY_FROM.
			name := c.Name
			if prefix != "" {
				name = prefix + "-" + c.Name
			}
			checkFlags(t, name, c.Flags)
			walk(name, c.Subcommands)
		}
	}
	walk("", app.Commands)
}

func checkFlags(t *testing.T, cmd string, flags []cli.Flag) {
	t.Helper()
	for _, f := range flags {
		want := envVars(cmd, f.Names()[0])[0]
		var got []string
		if e, ok := f.(interface{ GetEnvVars() []string }); ok {
			got = e.GetEnvVars()
		}
		if len(got) == 0 || got[0] != want {
			t.Errorf("%s --%s reads %v, want %s", cmd, f.Names()[0], got, want)
		}
	}
}

func TestVersionCommand(t *testing.T) {
	app := newApp()
	var out bytes.Buffer
	app.Writer = &out
	if err := app.Run([]string{"opkit", "version"}); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(out.String(), "opkit ") {
		t.Fatalf("version printed %q", out.String())
	}
}

func TestBadLogFlagsStopStartUp(t *testing.T) {
	for _, args := range [][]string{
		{"opkit", "--log.level", "loud", "version"},
		{"opkit", "--log.format", "xml", "version"},
	} {
		app := newApp()
		app.Writer = &bytes.Buffer{}
		err := app.Run(args)
		if err == nil || !strings.Contains(err.Error(), args[1]) {
			t.Errorf("%v: error %v does not name the flag", args, err)
		}
	}
}

func TestLoggerFormats(t *testing.T) {
	for _, format := range []string{"text", "json"} {
		l, err := newLogger("debug", format)
		if err != nil {
			t.Fatal(err)
		}
		if !l.Enabled(context.Background(), slog.LevelDebug) {
			t.Errorf("%s logger drops debug", format)
		}
	}
	l, err := newLogger("warn", "text")
	if err != nil {
		t.Fatal(err)
	}
	if l.Enabled(context.Background(), slog.LevelInfo) {
		t.Error("warn logger keeps info")
	}
}

func TestEnvVarSetsFlag(t *testing.T) {
	t.Setenv("OPKIT_LOG_FORMAT", "xml")
	app := newApp()
	app.Writer = &bytes.Buffer{}
	if err := app.Run([]string{"opkit", "version"}); err == nil || !strings.Contains(err.Error(), "xml") {
		t.Fatalf("OPKIT_LOG_FORMAT was not read: %v", err)
	}
}
