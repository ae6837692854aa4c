package crypto

import (
	"bytes"
	"testing"
)

// FuzzVerify checks that Verify and Registry.Verify never panic on arbitrary
// signature and data bytes, and never accept a signature that the key did
// not produce (Ed25519 signing is deterministic, so the one valid signature
// the fuzzer can reach is the key's own).
func FuzzVerify(f *testing.F) {
	kps := TestKeys(99, 2)
	signer := mustSigner(f, kps[0])
	reg := testRegistry(f, kps)
	seed := func(data []byte, cut uint8) {
		sig, err := signer.Sign(splitAt(data, cut))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data, cut, sig)
		tampered := bytes.Clone(sig)
		tampered[len(tampered)-1] ^= 0x80
		f.Add(data, cut, tampered)
		f.Add(data, cut+1, sig)
	}
	seed([]byte("hello"), 2)
	seed(nil, 0)
	seed(bytes.Repeat([]byte{0xff}, 100), 50)
	f.Add([]byte("x"), uint8(0), []byte{1, 2, 3})
	f.Fuzz(func(t *testing.T, data []byte, cut uint8, sig []byte) {
		msg := splitAt(data, cut)
		err := Verify(kps[0].Pub, msg, sig)
		if regErr := reg.Verify("0", msg, sig); (regErr == nil) != (err == nil) {
			t.Fatalf("Verify: %v, Registry.Verify: %v", err, regErr)
		}
		if err := reg.Verify("nobody", msg, sig); err == nil {
			t.Fatal("unknown signer verified")
		}
		if err == nil {
			want, _ := signer.Sign(msg)
			if !bytes.Equal(sig, want) {
				t.Fatalf("accepted a signature the key did not produce: %x", sig)
			}
			if Verify(kps[1].Pub, msg, sig) == nil {
				t.Fatal("signature verified under another key")
			}
		}
	})
}

// splitAt splits data into two parts at cut (mod len+1); cut 255 keeps one part.
func splitAt(data []byte, cut uint8) [][]byte {
	if cut == 255 {
		return [][]byte{data}
	}
	i := int(cut) % (len(data) + 1)
	return [][]byte{data[:i], data[i:]}
}
