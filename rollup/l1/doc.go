// Package l1 reads the L1 chain for the rollup node: block references by number, hash
// and label, headers, transactions and receipts, over an Ethereum JSON-RPC endpoint.
// Every call carries its own deadline, so a hung L1 endpoint surfaces as an error instead
// of freezing the caller. What is fetched by hash is immutable and kept in LRU caches,
// after being checked against the header that commits to it: a block's transactions must
// hash to its transactions root and its receipts to its receipts root, so a faulty or
// lying endpoint cannot feed derivation data the header does not commit to.
package l1
