package membership

import (
	"fmt"
	"math/big"
	"testing"

	"github.com/mirsubnet/mirsubnet/consensus/mir"
)

// BenchmarkTallyAddStrong measures the hot path: count one vote, then ask
// whether a strong quorum is reached. One op is one vote; the tally is
// reset after every member voted.
func BenchmarkTallyAddStrong(b *testing.B) {
	for _, n := range []int{4, 16, 64, 256} {
		for _, kind := range []string{"attoFIL", "huge"} {
			b.Run(fmt.Sprintf("n=%d/%s", n, kind), func(b *testing.B) {
				vals := make([]Validator, n)
				for i := range vals {
					w := NewWeight(uint64(i+1) * 1_000_000_000_000_000_000) // i+1 FIL in attoFIL
					if kind == "huge" {                                     // beyond 2^128: the big.Int path
						w, _ = WeightFromBig(new(big.Int).Lsh(big.NewInt(int64(i+1)), 130))
					}
					vals[i] = Validator{ID: mir.NodeID(fmt.Sprintf("validator-%03d", i)), Weight: w}
				}
				s, err := NewSimSet(vals)
				if err != nil {
					b.Fatal(err)
				}
				if s.small != (kind == "attoFIL") {
					b.Fatalf("fast path = %v", s.small)
				}
				ids := s.IDs()
				t := s.NewTally()
				strong := 0
				b.ReportAllocs()
				b.ResetTimer()
				for i := 0; b.Loop(); i++ {
					if i%n == 0 {
						t.Reset()
					}
					t.Add(ids[i%n])
					if t.Strong() {
						strong++
					}
				}
				if strong == 0 {
					b.Fatal("never strong")
				}
				b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "votes/s")
			})
		}
	}
}

// BenchmarkDecode measures decoding and validating a 64-validator strict set.
func BenchmarkDecode(b *testing.B) {
	s, err := NewSet(strictVals(b, 64))
	if err != nil {
		b.Fatal(err)
	}
	enc := s.Encode()
	b.SetBytes(int64(len(enc)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := Decode(enc); err != nil {
			b.Fatal(err)
		}
	}
}
