// Package itests holds the integration tests: real `mirsubnet run`
// validator processes on 127.0.0.1 (OS-assigned ports), driven through the
// client protocol. TestMain builds the binary once (a normal build, even when
// the tests themselves run under -race); each test generates a fresh network
// with localnet, loads it, injects faults (SIGKILL and restart), and checks
// that no acknowledged transaction is lost or committed twice and that every
// validator reaches the same state root at the same height.
package itests
