// Package kvstore is a replicated key-value application for mirsubnet: an
// iss.App whose state is a map of keys to values plus each sender's next
// nonce, committed to by a sparse Merkle tree so that a state root in a
// checkpoint certificate lets anyone check a single value (Prove,
// VerifyProof) or a whole snapshot (Restore) without trusting its source.
// It plays the role of CometBFT's kvstore example: a subnet that does
// something checkable.
//
// Transactions. A transaction is an ordering.Tx whose Data is one of the
// textual commands
//
//	set <key>=<value>
//	del <key>
//
// The key runs from after the verb to the first '='; the value is the rest
// of Data and may hold any bytes, '=' included. Keys are 1..MaxKeyLen bytes
// without '='; values at most MaxValueLen bytes. The encoding is canonical:
// Command.Encode(ParseTx(d)) == d for every accepted d. CheckTx is the
// mempool's admission check.
//
// Nonces. The store keeps each sender's next nonce (0 for a sender never
// seen). Apply executes a transaction only if its nonce equals the sender's
// next nonce; any other transaction (a replay, a duplicate, one that skips
// ahead) is skipped and counted in Result.BadNonce, so no (Sender, Nonce)
// is ever applied twice. A transaction with the right nonce consumes it even
// when its Data is not a valid command (counted in Result.Invalid): once a
// (Sender, Nonce) is ordered it is used. A transaction whose shape fails
// ordering.Tx.Check consumes nothing.
//
// State root. Every entry of the state is a leaf of one sparse Merkle tree
// over 256-bit paths: a key's path is SHA-256(0x10 || key), a sender's nonce
// SHA-256(0x11 || sender), and one metadata leaf at SHA-256(0x12 ||
// "next-seqnr") holds the next sequence number Apply accepts, so a snapshot
// is authenticated completely by its root. Hashes are domain-separated:
//
//	leaf  = SHA-256(0x00 || path || SHA-256(value))
//	inner = SHA-256(0x01 || left || right)
//
// where a nonce's or the sequence number's value is its 8-byte big-endian
// encoding. An empty subtree of height h hashes to the precomputed
// EmptyHash(h) (EmptyHash(0) is 32 zero bytes). A subtree holding exactly one
// leaf is represented by that leaf itself, placed where the subtree starts
// (the compact sparse Merkle tree of Diem/Aptos): the leaf hash binds the
// full path, so this is as binding as the full-depth tree, but an update
// costs O(log n) hashes instead of 256 and the tree stores about 2.4 nodes
// per leaf instead of about 240. The representation is canonical (it depends
// only on the set of leaves), so the root does not depend on the order in
// which keys were inserted or deleted. Apply marks the nodes it touches
// dirty and leaves them; the first reader that needs the root (Root, Prove,
// Snapshot, which ISS calls at every checkpoint) rehashes each dirty node
// once. The cost grows with the number of entries touched and the
// logarithm of the state size, never with the state size itself, and the
// upper levels of the tree, which every batch touches, are hashed once per
// root instead of once per batch.
//
// Snapshots. Snapshot encodes the state deterministically (version 1):
//
//	"MSKV" 0x01
//	next sequence number          uint64
//	key count                     uint64
//	  key length uint32, key, value length uint32, value   (keys strictly ascending)
//	sender count                  uint64
//	  sender length uint32, sender, next nonce uint64      (senders strictly ascending, nonce >= 1)
//
// All integers are big-endian and fixed-width, so the encoding of a state is
// unique; Restore accepts exactly the encodings Snapshot produces (bounded
// lengths, strict order, no trailing bytes), never panics on untrusted
// bytes, and leaves the state unchanged when it fails.
//
// Concurrency. Store is safe for concurrent use. Apply, Snapshot and Restore
// are meant to be called from one goroutine (the application module's);
// Get, Len, Root, NextNonce and Prove may be called from any goroutine (the
// mempool's NonceSource, an RPC server). Apply holds the write lock for a
// whole batch, so readers see the state before or after a batch, never half
// of one; Root, Prove and Snapshot take the write lock briefly when they
// must rehash.
package kvstore
