package mempool

// acctHeap is a min-heap of accounts by key (the arrival number of the
// account's selectable head). Each account stores its index in heapIdx.
type acctHeap []*account

func (h acctHeap) less(i, j int) bool { return h[i].key < h[j].key }

func (h acctHeap) swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

func (h acctHeap) up(i int) {
	for i > 0 {
		parent := (i - 1) / 2
		if !h.less(i, parent) {
			return
		}
		h.swap(i, parent)
		i = parent
	}
}

func (h acctHeap) down(i int) bool {
	start := i
	n := len(h)
	for {
		l := 2*i + 1
		if l >= n {
			break
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			break
		}
		h.swap(i, m)
		i = m
	}
	return i > start
}

func (h *acctHeap) push(a *account) {
	a.heapIdx = len(*h)
	*h = append(*h, a)
	h.up(a.heapIdx)
}

func (h *acctHeap) remove(i int) {
	old := *h
	n := len(old) - 1
	if i != n {
		old.swap(i, n)
	}
	old[n].heapIdx = -1
	old[n] = nil
	*h = old[:n]
	if i != n {
		h.fix(i)
	}
}

func (h acctHeap) fix(i int) {
	if !h.down(i) {
		h.up(i)
	}
}

// bucketHeap is a min-heap of bucket numbers by the key of their heap's top,
// used by Select to merge the requested buckets in arrival order.
type bucketHeap struct {
	bs      []int
	buckets []acctHeap
}

func (h *bucketHeap) key(i int) uint64 { return h.buckets[h.bs[i]][0].key }

func (h *bucketHeap) less(i, j int) bool { return h.key(i) < h.key(j) }

func (h *bucketHeap) init() {
	for i := len(h.bs)/2 - 1; i >= 0; i-- {
		h.down(i)
	}
}

func (h *bucketHeap) down(i int) {
	n := len(h.bs)
	for {
		l := 2*i + 1
		if l >= n {
			return
		}
		m := l
		if r := l + 1; r < n && h.less(r, l) {
			m = r
		}
		if !h.less(m, i) {
			return
		}
		h.bs[i], h.bs[m] = h.bs[m], h.bs[i]
		i = m
	}
}

// fixTop restores the heap after the top bucket's key grew or the bucket
// became empty.
func (h *bucketHeap) fixTop() {
	if len(h.buckets[h.bs[0]]) == 0 {
		n := len(h.bs) - 1
		h.bs[0] = h.bs[n]
		h.bs = h.bs[:n]
		if n == 0 {
			return
		}
	}
	h.down(0)
}
