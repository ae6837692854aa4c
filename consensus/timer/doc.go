// Package timer provides time to mirsubnet: a Clock interface with a real
// implementation (RealClock) and a deterministic virtual one (VirtualClock),
// and the timer active module (Module) that turns the events.TimerDelay,
// events.TimerRepeat and events.TimerGarbageCollect requests of protocol
// modules into events emitted when their time comes.
//
// Protocol cores never read a clock: they ask this module for timer events.
// In production the module runs on RealClock; in tests and in the simulator
// it runs on a VirtualClock that moves only when Advance, AdvanceTo or
// AdvanceToNext is called, so that timers fire in a reproducible order
// (deadline order, ties broken by creation order).
//
// The logic lives in Scheduler, which has no goroutine of its own and hands
// due events to a callback on the goroutine that fires the clock's timers.
// A simulator driving a VirtualClock from one goroutine can use a Scheduler
// directly and collect the fired events synchronously; Module wraps a
// Scheduler with an output queue and the goroutine that feeds EventsOut.
package timer
