// Package localnet generates and runs local subnets: validator home
// directories (config.toml, node.key, genesis.json) with OS-assigned ports on
// 127.0.0.1, and validator processes (`mirsubnet run`). The CLI's testnet and
// bench commands and the integration tests use it.
package localnet
