// Package events defines the event payloads that form the contract between
// protocol (passive) modules and the active modules that perform effects:
// network, timers, WAL, signing and hashing. Protocol cores import this
// package, never the active modules' implementations.
//
// Conventions: a request carries the ID of the module the answer goes to
// (ReplyTo) and an opaque Context (a registered payload value or nil) that is
// echoed back, so that requesters need no table of pending requests.
package events
