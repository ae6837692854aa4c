// Package ordering holds the small types the ordering protocols share:
// transactions, batches, their digests and the bucket a sender hashes to.
// It depends only on consensus/mir.
package ordering
