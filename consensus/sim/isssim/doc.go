// Package isssim plugs the ISS-PBFT ordering protocol into the deterministic
// simulator (consensus/sim): a factory that builds a node's passive modules
// (ISS, the reference pool, the hash-chain application) from a NodeEnv, and
// the seeded test suites: random fault scenarios, Twins scenarios, the
// determinism check and the planted-bug sanity checks.
package isssim
