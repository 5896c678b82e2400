package devnet

import (
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum/core/vm"
)

// assembler builds EVM bytecode from opcodes, pushes and named jump targets. The dev L1's
// contract stand-ins are a few dozen instructions each; writing them here keeps their
// behaviour readable next to the Go that calls them, with no compiler in the build.
type assembler struct {
	code   []byte
	labels map[string]int
	// fixups are the offsets of two-byte PUSH2 immediates still waiting for a label.
	fixups map[int]string
}

func newAssembler() *assembler {
	return &assembler{labels: map[string]int{}, fixups: map[int]string{}}
}

// op appends opcodes without immediates.
func (a *assembler) op(ops ...vm.OpCode) *assembler {
	for _, o := range ops {
		a.code = append(a.code, byte(o))
	}
	return a
}

// push appends the shortest PUSH of v (PUSH0 for zero).
func (a *assembler) push(v uint64) *assembler {
	return a.pushBig(new(big.Int).SetUint64(v))
}

// pushBytes appends a PUSHn of exactly len(b) bytes (1..32).
func (a *assembler) pushBytes(b []byte) *assembler {
	if len(b) == 0 || len(b) > 32 {
		panic(fmt.Sprintf("devnet assembler: push of %d bytes", len(b)))
	}
	a.code = append(a.code, byte(vm.PUSH1)+byte(len(b)-1))
	a.code = append(a.code, b...)
	return a
}

func (a *assembler) pushBig(v *big.Int) *assembler {
	if v.Sign() == 0 {
		return a.op(vm.PUSH0)
	}
	return a.pushBytes(v.Bytes())
}

// pushLabel appends a PUSH2 of a label's offset, resolved when the code is finished.
func (a *assembler) pushLabel(name string) *assembler {
	a.code = append(a.code, byte(vm.PUSH2))
	a.fixups[len(a.code)] = name
	a.code = append(a.code, 0, 0)
	return a
}

// jumpTo and jumpIf are PUSH2 label; JUMP / JUMPI.
func (a *assembler) jumpTo(name string) *assembler { return a.pushLabel(name).op(vm.JUMP) }
func (a *assembler) jumpIf(name string) *assembler { return a.pushLabel(name).op(vm.JUMPI) }

// label marks a jump target here (a JUMPDEST).
func (a *assembler) label(name string) *assembler {
	if _, dup := a.labels[name]; dup {
		panic("devnet assembler: label defined twice: " + name)
	}
	a.labels[name] = len(a.code)
	return a.op(vm.JUMPDEST)
}

// bytecode resolves the labels. A missing label is a bug in the program, not an input
// error, so it panics (at package initialisation, where every program is assembled).
func (a *assembler) bytecode() []byte {
	out := append([]byte(nil), a.code...)
	for at, name := range a.fixups {
		target, ok := a.labels[name]
		if !ok {
			panic("devnet assembler: undefined label " + name)
		}
		if target > 0xffff {
			panic("devnet assembler: program too large")
		}
		out[at], out[at+1] = byte(target>>8), byte(target)
	}
	return out
}
