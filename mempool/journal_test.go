package mempool

import (
	"os"
	"path/filepath"
	"slices"
	"sync"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/ordering"
	"github.com/mirsubnet/mirsubnet/consensus/wal"
)

func newUsedNonces() *lagSource { return &lagSource{next: map[string]uint64{}} }

// commitRounds records rounds×per transactions of sender "s", a round at a
// time; after each round their nonces are used and Maintain runs.
func commitRounds(t *testing.T, j *Journal, nonces *lagSource, rounds, per int) {
	t.Helper()
	for round := range rounds {
		var txs []ordering.Tx
		for i := range per {
			txs = append(txs, mkTx("s", uint64(round*per+i)))
		}
		record(t, j, txs...)
		nonces.set("s", uint64((round+1)*per))
		if err := j.Maintain(); err != nil {
			t.Fatal(err)
		}
	}
}

func openJournal(t *testing.T, dir string, nonces NonceSource, opts JournalOptions) (*Journal, []ordering.Tx, JournalReport) {
	t.Helper()
	j, txs, rep, err := OpenJournal(dir, nonces, opts)
	if err != nil {
		t.Fatal(err)
	}
	return j, txs, rep
}

// record records txs and waits until all are durable.
func record(t *testing.T, j *Journal, txs ...ordering.Tx) {
	t.Helper()
	var wg sync.WaitGroup
	errs := make(chan error, len(txs))
	for _, tx := range txs {
		wg.Add(1)
		j.Record(tx, func(err error) {
			errs <- err
			wg.Done()
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

func dirSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += fi.Size()
	}
	return n
}

// TestJournalRecoversPending: what was recorded comes back after a reopen,
// in order, except the transactions whose nonce is used meanwhile.
func TestJournalRecoversPending(t *testing.T) {
	dir := t.TempDir()
	nonces := newUsedNonces()
	j, txs, rep := openJournal(t, dir, nonces, DefaultJournalOptions())
	if len(txs) != 0 || rep.Records != 0 {
		t.Fatalf("fresh journal returned %d txs, %+v", len(txs), rep)
	}
	var want []ordering.Tx
	for i := range 20 {
		want = append(want, mkTx("a", uint64(i)), mkTx("b", uint64(i)))
	}
	record(t, j, want...)
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	// a's nonces below 5 were used (committed while the node was down).
	nonces.set("a", 5)
	j, txs, rep = openJournal(t, dir, nonces, DefaultJournalOptions())
	defer j.Close()
	var exp []ordering.Tx
	for _, tx := range want {
		if tx.Sender != "a" || tx.Nonce >= 5 {
			exp = append(exp, tx)
		}
	}
	if got := names(txs); !slices.Equal(got, names(exp)) || rep.Records != 40 || rep.Pending != 35 || rep.Undecodable != 0 {
		t.Fatalf("recovered %v (%+v), want %v", got, rep, names(exp))
	}
	for i, tx := range txs {
		if tx.ID() != mkTx(tx.Sender, tx.Nonce).ID() {
			t.Fatalf("tx %d came back altered", i)
		}
	}
}

// TestJournalMaintainTruncates: once the nonces are used, Maintain deletes
// the log behind them, so the journal stays small under steady load.
func TestJournalMaintainTruncates(t *testing.T) {
	dir := t.TempDir()
	nonces := newUsedNonces()
	opts := JournalOptions{CompactAfter: 1 << 20, SegmentSize: 4 << 10}
	j, _, _ := openJournal(t, dir, nonces, opts)
	commitRounds(t, j, nonces, 20, 50)
	st := j.Stats()
	if st.Live != 0 || st.Done != 1000 || st.Recorded != 1000 {
		t.Fatalf("stats %+v", st)
	}
	// 1,000 records of ~20 bytes would fill several 4 KiB segments; all but
	// the active one must be gone.
	if n := dirSize(t, dir); n > 3*opts.SegmentSize {
		t.Fatalf("journal holds %d bytes after everything was committed", n)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, txs, _ := openJournal(t, dir, nonces, opts)
	defer j.Close()
	if len(txs) != 0 {
		t.Fatalf("%d committed transactions came back", len(txs))
	}
}

// TestJournalCompaction: a transaction that stays pending forever does not
// pin the log: it is copied forward, the log behind it is deleted, and it
// comes back exactly once.
func TestJournalCompaction(t *testing.T) {
	dir := t.TempDir()
	nonces := newUsedNonces()
	opts := JournalOptions{CompactAfter: 100, SegmentSize: 4 << 10}
	j, _, _ := openJournal(t, dir, nonces, opts)
	stuck := mkTx("stuck", 7) // nonces 0..6 never arrive
	record(t, j, stuck)
	commitRounds(t, j, nonces, 20, 50)
	st := j.Stats()
	if st.Live != 1 || st.Compacted == 0 {
		t.Fatalf("stats %+v, want the stuck transaction live and copied forward", st)
	}
	if n := dirSize(t, dir); n > 3*opts.SegmentSize {
		t.Fatalf("journal holds %d bytes: the stuck transaction pins the log", n)
	}
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, txs, _ := openJournal(t, dir, nonces, opts)
	defer j.Close()
	if len(txs) != 1 || txs[0].ID() != stuck.ID() {
		t.Fatalf("recovered %v, want the stuck transaction once", names(txs))
	}
	// Its nonce gets used: the next maintenance forgets it.
	nonces.set("stuck", 8)
	if err := j.Maintain(); err != nil {
		t.Fatal(err)
	}
	if st := j.Stats(); st.Live != 0 {
		t.Fatalf("stats %+v after the stuck nonce was used", st)
	}
}

// TestJournalSkipsForeignRecords: a record that is not a journal record
// (written by something else, or by a future version) is counted and
// skipped; the others still come back.
func TestJournalSkipsForeignRecords(t *testing.T) {
	dir := t.TempDir()
	nonces := newUsedNonces()
	j, _, _ := openJournal(t, dir, nonces, DefaultJournalOptions())
	record(t, j, mkTx("a", 0))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	l, _, _, err := wal.Open(dir, wal.DefaultOptions())
	if err != nil {
		t.Fatal(err)
	}
	for _, junk := range [][]byte{{9, 1, 2}, {journalVersion, 0xff}, {}} {
		if _, err := l.Append(junk, 100); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	j, txs, rep := openJournal(t, dir, nonces, DefaultJournalOptions())
	if len(txs) != 1 || rep.Undecodable != 3 {
		t.Fatalf("recovered %v, report %+v", names(txs), rep)
	}
	// New records continue after the highest retention index seen.
	record(t, j, mkTx("a", 1))
	if err := j.Close(); err != nil {
		t.Fatal(err)
	}
	j, txs, _ = openJournal(t, dir, nonces, DefaultJournalOptions())
	defer j.Close()
	if len(txs) != 2 {
		t.Fatalf("recovered %v", names(txs))
	}
}

func TestOpenJournalErrors(t *testing.T) {
	if _, _, _, err := OpenJournal(t.TempDir(), nil, DefaultJournalOptions()); err == nil {
		t.Error("no NonceSource accepted")
	}
	if _, _, _, err := OpenJournal(t.TempDir(), newUsedNonces(), JournalOptions{}); err == nil {
		t.Error("CompactAfter 0 accepted")
	}
	f := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(f, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := OpenJournal(f, newUsedNonces(), DefaultJournalOptions()); err == nil {
		t.Error("a file accepted as the journal directory")
	}
}

// FuzzJournalRecord: decoding never panics, and what decodes re-encodes to
// the same bytes (records are canonical).
func FuzzJournalRecord(f *testing.F) {
	for _, tx := range []ordering.Tx{mkTx("a", 0), {Sender: "s", Nonce: 1 << 40, Data: []byte{0, 1}}} {
		b, err := encodeJournalRecord(tx)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{journalVersion})
	f.Fuzz(func(t *testing.T, data []byte) {
		tx, err := decodeJournalRecord(data)
		if err != nil {
			return
		}
		b, err := encodeJournalRecord(tx)
		if err != nil {
			t.Fatalf("decoded tx does not encode: %v", err)
		}
		if !slices.Equal(b, data) {
			t.Fatalf("non-canonical record accepted: %x re-encodes to %x", data, b)
		}
	})
}
