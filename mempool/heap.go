package mempool

import "container/heap"

// acctHeap is a min-heap of accounts by key (the arrival number of the
// account's selectable head), through container/heap. Each account stores
// its index in heapIdx (-1 when not in a heap).
type acctHeap []*account

func (h acctHeap) Len() int { return len(h) }

func (h acctHeap) Less(i, j int) bool { return h[i].key < h[j].key }

func (h acctHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIdx = i
	h[j].heapIdx = j
}

// Push and Pop are for container/heap; use push, remove and fix.
func (h *acctHeap) Push(x any) {
	a := x.(*account)
	a.heapIdx = len(*h)
	*h = append(*h, a)
}

func (h *acctHeap) Pop() any {
	old := *h
	n := len(old) - 1
	a := old[n]
	old[n] = nil
	a.heapIdx = -1
	*h = old[:n]
	return a
}

func (h *acctHeap) push(a *account) { heap.Push(h, a) }

func (h *acctHeap) remove(i int) { heap.Remove(h, i) }

func (h *acctHeap) fix(i int) { heap.Fix(h, i) }

// bucketHeap is a min-heap of bucket numbers by the key of their heap's top,
// used by Select to merge the requested buckets in arrival order.
type bucketHeap struct {
	bs      []int
	buckets []acctHeap
}

func (h *bucketHeap) key(i int) uint64 { return h.buckets[h.bs[i]][0].key }

func (h *bucketHeap) Len() int { return len(h.bs) }

func (h *bucketHeap) Less(i, j int) bool { return h.key(i) < h.key(j) }

func (h *bucketHeap) Swap(i, j int) { h.bs[i], h.bs[j] = h.bs[j], h.bs[i] }

// Push and Pop are for container/heap.
func (h *bucketHeap) Push(x any) { h.bs = append(h.bs, x.(int)) }

func (h *bucketHeap) Pop() any {
	n := len(h.bs) - 1
	b := h.bs[n]
	h.bs = h.bs[:n]
	return b
}

func (h *bucketHeap) init() { heap.Init(h) }

// fixTop restores the heap after the top bucket's key grew or the bucket
// became empty.
func (h *bucketHeap) fixTop() {
	if len(h.buckets[h.bs[0]]) == 0 {
		heap.Pop(h)
		return
	}
	heap.Fix(h, 0)
}
