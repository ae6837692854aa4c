// Package mir is the framework every mirsubnet protocol runs on.
//
// A Node holds named modules and runs one event loop. Modules talk only
// through events (plain Go structs wrapped in an Event envelope). A passive
// module is a pure state machine (ApplyEvents in, events out); an active
// module owns goroutines and talks to the world, emitting events on a
// channel. The loop dispatches events to passive modules on one goroutine in
// a deterministic order, releases follow-up events (Event.Next) after their
// parent was processed, applies flow control to active modules' outputs and
// shows every dispatched event to an Interceptor (the event log).
//
// Events are encoded with CBOR only where they leave the process or reach
// disk (WAL, event log, network); see Encode, Decode and RegisterPayload.
//
// Writing a module: see consensus/sample for a complete passive protocol and
// docs/modules.md for the contract.
package mir
