//go:build mirbugs

package bugs

// Enabled is true in builds with the tag mirbugs.
const Enabled = true

// active is the bug currently planted (0: none). Set only by tests, between
// simulation runs, from the single simulation goroutine.
var active Bug

// On reports whether bug b is planted.
func On(b Bug) bool { return active == b }

// Plant plants bug b (0 removes every bug).
func Plant(b Bug) { active = b }
