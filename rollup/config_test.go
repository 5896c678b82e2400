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
		"zero block time":                        `"block_time": 2` + "|" + `"block_time": 0`,
		"isthmus later":                          `"isthmus_time": 0` + "|" + `"isthmus_time": 1800000000`,
		"isthmus missing":                        `"isthmus_time": 0,` + "|" + ``,
		"karst scheduled":                        `"isthmus_time": 0,` + "|" + `"isthmus_time": 0, "karst_time": 5,`,
		"interop scheduled":                      `"isthmus_time": 0,` + "|" + `"isthmus_time": 0, "interop_time": 0,`,
		"holocene later":                         `"holocene_time": 0` + "|" + `"holocene_time": 1700000002`,
		"ecotone missing":                        `"ecotone_time": 0,` + "|" + ``,
		"same chain ids":                         `"l2_chain_id": 901` + "|" + `"l2_chain_id": 900`,
		"no gas limit":                           `"gasLimit": 60000000` + "|" + `"gasLimit": 0`,
		"bad scalar version":                     `"scalar": "0x01` + "|" + `"scalar": "0x07`,
		"alt da no type":                         `"chain_op_config"` + "|" + `"alt_da": {"da_challenge_window": 10, "da_resolve_window": 10}, "chain_op_config"`,
		"alt da bad type":                        `"chain_op_config"` + "|" + `"alt_da": {"da_commitment_type": "Sha", "da_challenge_window": 10, "da_resolve_window": 10}, "chain_op_config"`,
		"alt da keccak no challenge contract":    `"chain_op_config"` + "|" + `"alt_da": {"da_commitment_type": "KeccakCommitment", "da_challenge_window": 10, "da_resolve_window": 10}, "chain_op_config"`,
		"alt da generic with challenge contract": `"chain_op_config"` + "|" + `"alt_da": {"da_commitment_type": "GenericCommitment", "da_challenge_contract_address": "0x00000000000000000000000000000000000d0003", "da_challenge_window": 10, "da_resolve_window": 10}, "chain_op_config"`,
		"alt da no challenge window":             `"chain_op_config"` + "|" + `"alt_da": {"da_commitment_type": "GenericCommitment", "da_resolve_window": 10}, "chain_op_config"`,
		"alt da no resolve window":               `"chain_op_config"` + "|" + `"alt_da": {"da_commitment_type": "GenericCommitment", "da_challenge_window": 10}, "chain_op_config"`,
		"no chain op config":                     `"chain_op_config": {"eip1559Elasticity": 6, "eip1559Denominator": 50, "eip1559DenominatorCanyon": 250}` + "|" + `"seq_window_size": 3600`,
		"trailing data":                          "\n}" + "|" + "\n} {}",
		"not json":                               `"genesis"` + "|" + `genesis`,
		"short eip1559Params":                    `"eip1559Params": "0x0000000000000000"` + "|" + `"eip1559Params": "0x00"`,
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

// TestCheckRefusalNamesTheFork: the refusal is one line that names the field.
func TestCheckRefusalNamesTheFork(t *testing.T) {
	const forks = `"granite_time": 0, "holocene_time": 0, "isthmus_time": 0`
	for field, edit := range map[string]string{
		"karst_time":                forks + `, "karst_time": 1700000100`,
		"interop_time":              forks + `, "interop_time": 1700000100`,
		"pectra_blob_schedule_time": forks + `, "pectra_blob_schedule_time": 1700000100`,
		"granite_time":              `"granite_time": 1700000100, "holocene_time": 0, "isthmus_time": 0`,
		"holocene_time":             `"granite_time": 0, "holocene_time": 1700000100, "isthmus_time": 0`,
		"isthmus_time":              `"granite_time": 0, "holocene_time": 0, "isthmus_time": 1700000100`,
	} {
		doc := strings.Replace(opNodeRollupJSON, forks, edit, 1)
		if doc == opNodeRollupJSON {
			t.Fatalf("%s: edit did not apply", field)
		}
		_, err := ParseConfig([]byte(doc))
		if err == nil || !strings.Contains(err.Error(), field) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%s: %v", field, err)
		}
	}
}

func TestCheckAcceptsJovianAndAltDA(t *testing.T) {
	for name, edit := range map[string]string{
		"jovian at genesis": `"isthmus_time": 0, "jovian_time": 0,`,
		"jovian later":      `"isthmus_time": 0, "jovian_time": 1700000100,`,
	} {
		doc := strings.Replace(opNodeRollupJSON, `"isthmus_time": 0,`, edit, 1)
		c, err := ParseConfig([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if name == "jovian later" && (c.IsJovian(1700000098) || !c.IsJovian(1700000100) || !c.IsJovianActivationBlock(1700000100) || c.IsJovianActivationBlock(1700000102)) {
			t.Errorf("%s: fork predicates wrong", name)
		}
		if name == "jovian at genesis" && c.IsJovianActivationBlock(c.Genesis.L2Time+c.BlockTime) {
			t.Errorf("%s: block 1 counted as the activation block", name)
		}
	}
	for typ, addr := range map[string]string{"KeccakCommitment": "0x00000000000000000000000000000000000d0003", "GenericCommitment": ""} {
		section := `"alt_da": {"da_commitment_type": "` + typ + `", "da_challenge_window": 16, "da_resolve_window": 8`
		if addr != "" {
			section += `, "da_challenge_contract_address": "` + addr + `"`
		}
		doc := strings.Replace(opNodeRollupJSON, `"chain_op_config"`, section+`}, "chain_op_config"`, 1)
		c, err := ParseConfig([]byte(doc))
		if err != nil {
			t.Fatalf("%s: %v", typ, err)
		}
		b, err := c.AltDAConfig.CommitmentTypeByte()
		if err != nil || c.AltDAConfig.DAChallengeWindow != 16 || c.AltDAConfig.DAResolveWindow != 8 || (typ == "KeccakCommitment") != (b == 0) {
			t.Errorf("%s: decoded %+v (%d, %v)", typ, c.AltDAConfig, b, err)
		}
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
