// Command opkit runs the OP Stack systems an operator needs beside its execution client.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newApp().Run(os.Args); err != nil {
		fmt.Fprintln(os.Stderr, "opkit:", err)
		os.Exit(1)
	}
}
