//go:build !mirbugs

package bugs

// Enabled is false: planted bugs exist only with the build tag mirbugs.
const Enabled = false

// On reports whether bug b is planted; always false in normal builds.
func On(b Bug) bool { return false }
