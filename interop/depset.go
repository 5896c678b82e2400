package interop

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
)

// MessageExpiryWindow is how long, in seconds, an initiating message may be executed
// after its block's timestamp (one week).
const MessageExpiryWindow = 604800

// maxDependencySetSize bounds the file a supervisor reads at start-up.
const maxDependencySetSize = 1 << 20

// DependencySet is the set of chains whose messages may be executed on each other, in the
// OP Stack's static format: {"dependencies":{"<chainID>":{}}}.
type DependencySet struct {
	chains []ChainID
}

type depSetJSON struct {
	Dependencies map[string]json.RawMessage `json:"dependencies"`
}

// NewDependencySet builds a set from chain IDs.
func NewDependencySet(chains ...ChainID) *DependencySet {
	s := &DependencySet{chains: slices.Clone(chains)}
	slices.Sort(s.chains)
	s.chains = slices.Compact(s.chains)
	return s
}

// ParseDependencySet decodes the JSON form; it needs at least one chain.
func ParseDependencySet(data []byte) (*DependencySet, error) {
	var raw depSetJSON
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("dependency set: %w", err)
	}
	if len(raw.Dependencies) == 0 {
		return nil, errors.New(`dependency set: no chains under "dependencies"`)
	}
	chains := make([]ChainID, 0, len(raw.Dependencies))
	for k, v := range raw.Dependencies {
		id, err := ParseChainID(k)
		if err != nil {
			return nil, fmt.Errorf("dependency set: %w", err)
		}
		var obj map[string]json.RawMessage
		if err := json.Unmarshal(v, &obj); err != nil {
			return nil, fmt.Errorf("dependency set: chain %s: want an object: %w", k, err)
		}
		chains = append(chains, id)
	}
	s := NewDependencySet(chains...)
	if len(s.chains) != len(chains) {
		return nil, errors.New("dependency set: a chain is listed twice")
	}
	return s, nil
}

// LoadDependencySet reads the JSON form from a file.
func LoadDependencySet(path string) (*DependencySet, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("dependency set: %w", err)
	}
	defer f.Close()
	data := make([]byte, maxDependencySetSize+1)
	n, err := readFull(f, data)
	if err != nil {
		return nil, fmt.Errorf("dependency set %s: %w", path, err)
	}
	if n > maxDependencySetSize {
		return nil, fmt.Errorf("dependency set %s: larger than %d bytes", path, maxDependencySetSize)
	}
	return ParseDependencySet(data[:n])
}

// Chains lists the chains in ascending order.
func (s *DependencySet) Chains() []ChainID { return slices.Clone(s.chains) }

// HasChain reports whether id is in the set.
func (s *DependencySet) HasChain(id ChainID) bool {
	_, ok := slices.BinarySearch(s.chains, id)
	return ok
}

// MarshalJSON writes the OP Stack's format.
func (s *DependencySet) MarshalJSON() ([]byte, error) {
	out := depSetJSON{Dependencies: make(map[string]json.RawMessage, len(s.chains))}
	for _, c := range s.chains {
		out.Dependencies[c.String()] = json.RawMessage("{}")
	}
	return json.Marshal(out)
}
