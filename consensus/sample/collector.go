package sample

import (
	"fmt"

	"github.com/mirsubnet/mirsubnet/consensus/events"
	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// Collector is a passive module (ModApp) that keeps every Delivered event in
// the order it arrives.
type Collector struct {
	// deliveries holds every delivery received, in order.
	deliveries []Delivered
}

// NewCollector returns an empty collector.
func NewCollector() *Collector { return &Collector{} }

// ApplyEvents implements mir.PassiveModule. Events other than Delivered (and
// events.Init) are a wiring bug and fail the module.
func (c *Collector) ApplyEvents(evs mir.EventList) (mir.EventList, error) {
	return mir.ApplyEach(evs, func(e mir.Event) (mir.EventList, error) {
		switch p := e.Payload.(type) {
		case Delivered:
			c.deliveries = append(c.deliveries, p)
		case events.Init:
		default:
			return nil, fmt.Errorf("sample: collector: unexpected event %s", mir.PayloadName(e.Payload))
		}
		return nil, nil
	})
}

// Deliveries returns a copy of what was delivered so far. Like the module's
// state, it must be read from the goroutine that applies events, or after
// the node stopped.
func (c *Collector) Deliveries() []Delivered {
	return append([]Delivered(nil), c.deliveries...)
}
