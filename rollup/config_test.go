package rollup

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// opNodeRollupJSON is a rollup.json in op-node's encoding, written by hand, for a chain
// with every fork through Isthmus at genesis.
const opNodeRollupJSON = `{
  "genesis": {
    "l1": {"hash": "0x1111111111111111111111111111111111111111111111111111111111111111", "number": 0},
    "l2": {"hash": "0x2222222222222222222222222222222222222222222222222222222222222222", "number": 0},
    "l2_time": 1700000000,
    "system_config": {
      "batcherAddr": "0x3333333333333333333333333333333333333333",
      "overhead": "0x0000000000000000000000000000000000000000000000000000000000000000",
      "scalar": "0x010000000000000000000000000000000000000000000000000c5fc500000558",
      "gasLimit": 60000000,
      "eip1559Params": "0x0000000000000000",
      "operatorFeeParams": "0x0000000000000000000000000000000000000000000000000000000000000000",
      "minBaseFee": 0,
      "daFootprintGasScalar": 0
    }
  },
  "block_time": 2,
  "max_sequencer_drift": 1800,
  "seq_window_size": 3600,
  "channel_timeout": 300,
  "l1_chain_id": 900,
  "l2_chain_id": 901,
  "regolith_time": 0, "canyon_time": 0, "delta_time": 0, "ecotone_time": 0,
  "fjord_time": 0, "granite_time": 0, "holocene_time": 0, "isthmus_time": 0,
  "batch_inbox_address": "0xff00000000000000000000000000000000000901",
  "deposit_contract_address": "0x00000000000000000000000000000000000d0001",
  "l1_system_config_address": "0x00000000000000000000000000000000000d0002",
  "chain_op_config": {"eip1559Elasticity": 6, "eip1559Denominator": 50, "eip1559DenominatorCanyon": 250}
}`

func TestParseOpNodeRollupJSON(t *testing.T) {
	c, err := ParseConfig([]byte(opNodeRollupJSON))
	if err != nil {
		t.Fatal(err)
	}
	base, blob, _ := c.Genesis.SystemConfig.Scalars()
	if c.BlockTime != 2 || c.L2ChainID.Uint64() != 901 || base != 1368 || blob != 810949 || !c.IsIsthmus(c.Genesis.L2Time) ||
		c.MaxSequencerDriftAt(0) != 1800 || c.Genesis.SystemConfig.GasLimit != 60_000_000 || *c.ChainOpConfig.EIP1559DenominatorCanyon != 250 {
		t.Fatalf("decoded %+v", c)
	}
	// Writing it back gives the same JSON document.
	path := filepath.Join(t.TempDir(), "rollup.json")
	if err := WriteConfig(path, c); err != nil {
		t.Fatal(err)
	}
	again, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	a, _ := json.Marshal(c)
	b, _ := json.Marshal(again)
	if string(a) != string(b) {
		t.Fatalf("round trip differs:\n%s\n%s", a, b)
	}
	var generic, regen map[string]any
	json.Unmarshal([]byte(opNodeRollupJSON), &generic)
	json.Unmarshal(a, &regen)
	for k := range generic {
		if _, ok := regen[k]; !ok {
			t.Errorf("field %s lost when re-encoding", k)
		}
	}
}

func TestCheckRefusesWhatOpkitCannotFollow(t *testing.T) {
	cases := map[string]string{
		"zero block time":     `"block_time": 2` + "|" + `"block_time": 0`,
		"isthmus later":       `"isthmus_time": 0` + "|" + `"isthmus_time": 1800000000`,
		"isthmus missing":     `"isthmus_time": 0,` + "|" + ``,
		"jovian scheduled":    `"isthmus_time": 0,` + "|" + `"isthmus_time": 0, "jovian_time": 5,`,
		"same chain ids":      `"l2_chain_id": 901` + "|" + `"l2_chain_id": 900`,
		"no gas limit":        `"gasLimit": 60000000` + "|" + `"gasLimit": 0`,
		"bad scalar version":  `"scalar": "0x01` + "|" + `"scalar": "0x07`,
		"alt da":              `"chain_op_config"` + "|" + `"alt_da": {"da_challenge_contract_address": "0x0000000000000000000000000000000000000000"}, "chain_op_config"`,
		"no chain op config":  `"chain_op_config": {"eip1559Elasticity": 6, "eip1559Denominator": 50, "eip1559DenominatorCanyon": 250}` + "|" + `"seq_window_size": 3600`,
		"trailing data":       "\n}" + "|" + "\n} {}",
		"not json":            `"genesis"` + "|" + `genesis`,
		"short eip1559Params": `"eip1559Params": "0x0000000000000000"` + "|" + `"eip1559Params": "0x00"`,
	}
	for name, edit := range cases {
		parts := strings.SplitN(edit, "|", 2)
		doc := strings.Replace(opNodeRollupJSON, parts[0], parts[1], 1)
		if doc == opNodeRollupJSON {
			t.Fatalf("%s: edit did not apply", name)
		}
		if _, err := ParseConfig([]byte(doc)); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := LoadConfig(filepath.Join(t.TempDir(), "missing.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

// FuzzParseConfig: arbitrary bytes never panic; a config that parses re-encodes to one
// that parses to the same value.
func FuzzParseConfig(f *testing.F) {
	f.Add([]byte(opNodeRollupJSON))
	f.Add([]byte(`{}`))
	f.Add([]byte(`{"genesis": {"l2_time": "x"}}`))
	f.Add([]byte(`[1,2,3]`))
	f.Fuzz(func(t *testing.T, in []byte) {
		c, err := ParseConfig(in)
		if err != nil {
			if !errors.Is(err, ErrInvalidConfig) {
				t.Fatalf("unclassified error %v", err)
			}
			return
		}
		out, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		again, err := ParseConfig(out)
		if err != nil {
			t.Fatalf("re-encoded config refused: %v", err)
		}
		out2, _ := json.Marshal(again)
		if string(out) != string(out2) {
			t.Fatal("encoding is not stable")
		}
	})
}
