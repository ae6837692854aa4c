// Package client is the Go client of a mirsubnet validator's client
// protocol (libp2p protocol /mirsubnet/client/1.0.0): submit transactions
// (answered with admitted or the rejection reason), follow commits, and read
// a node's status. The wire types are shared with the server side
// (engine.ServeClients).
package client
