package kvstore

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"strings"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
)

// Limits on keys and values.
const (
	MaxKeyLen   = 1024
	MaxValueLen = 64 << 10
)

// ErrInvalidTx is returned for a transaction the store would not execute.
var ErrInvalidTx = errors.New("kvstore: invalid transaction")

// Op is a command's operation.
type Op uint8

// Operations.
const (
	OpSet Op = iota + 1
	OpDelete
)

// String returns the operation's verb.
func (o Op) String() string {
	switch o {
	case OpSet:
		return "set"
	case OpDelete:
		return "del"
	}
	return fmt.Sprintf("Op(%d)", uint8(o))
}

// Command is a decoded transaction: set Key to Value, or delete Key.
type Command struct {
	Op    Op
	Key   string
	Value []byte // OpSet only
}

var (
	setPrefix = []byte("set ")
	delPrefix = []byte("del ")
)

// ParseTx decodes a transaction's Data into a command and validates it.
func ParseTx(data []byte) (Command, error) {
	c, err := parseTx(data)
	if c.Op == OpSet {
		c.Value = bytes.Clone(c.Value)
		if c.Value == nil {
			c.Value = []byte{}
		}
	}
	return c, err
}

// parseTx is ParseTx with the value still pointing into data.
func parseTx(data []byte) (Command, error) {
	switch {
	case bytes.HasPrefix(data, setPrefix):
		rest := data[len(setPrefix):]
		i := bytes.IndexByte(rest, '=')
		if i < 0 {
			return Command{}, fmt.Errorf("%w: set without '='", ErrInvalidTx)
		}
		c := Command{Op: OpSet, Key: string(rest[:i]), Value: rest[i+1:]}
		return c, c.Check()
	case bytes.HasPrefix(data, delPrefix):
		c := Command{Op: OpDelete, Key: string(data[len(delPrefix):])}
		return c, c.Check()
	}
	return Command{}, fmt.Errorf("%w: want \"set <key>=<value>\" or \"del <key>\"", ErrInvalidTx)
}

// Check validates the command's key and value.
func (c Command) Check() error {
	if err := checkKey(c.Key); err != nil {
		return err
	}
	switch c.Op {
	case OpSet:
		if len(c.Value) > MaxValueLen {
			return fmt.Errorf("%w: value of %d bytes exceeds %d", ErrInvalidTx, len(c.Value), MaxValueLen)
		}
	case OpDelete:
		if len(c.Value) != 0 {
			return fmt.Errorf("%w: del with a value", ErrInvalidTx)
		}
	default:
		return fmt.Errorf("%w: unknown operation %d", ErrInvalidTx, c.Op)
	}
	return nil
}

// Encode returns the command's canonical textual form.
func (c Command) Encode() []byte {
	var b []byte
	switch c.Op {
	case OpSet:
		b = make([]byte, 0, len(setPrefix)+len(c.Key)+1+len(c.Value))
		b = append(append(append(append(b, setPrefix...), c.Key...), '='), c.Value...)
	default:
		b = append(append(b, delPrefix...), c.Key...)
	}
	return b
}

// checkKey validates a key: 1..MaxKeyLen bytes, no '='.
func checkKey(k string) error {
	if len(k) == 0 || len(k) > MaxKeyLen {
		return fmt.Errorf("%w: key length %d not in 1..%d", ErrInvalidTx, len(k), MaxKeyLen)
	}
	if i := strings.IndexByte(k, '='); i >= 0 {
		return fmt.Errorf("%w: '=' in key at %d", ErrInvalidTx, i)
	}
	return nil
}

// CheckTx is the mempool's admission check: the transaction's shape, its
// command, and a nonce that can still be applied. It does not compare the
// nonce with the sender's next nonce (use Store.NextNonce for that).
func CheckTx(tx ordering.Tx) error {
	if err := tx.Check(); err != nil {
		return err
	}
	if tx.Nonce == math.MaxUint64 {
		return fmt.Errorf("%w: nonce %d is reserved", ErrInvalidTx, tx.Nonce)
	}
	_, err := parseTx(tx.Data)
	return err
}
