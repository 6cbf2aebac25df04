package engine

// Graph checks are pure functions over node indexes, so they are easy to test on their own.

// findCycle returns the nodes of one cycle in order (first node repeated at the end), or nil.
// next(i) lists the nodes i delivers to.
func findCycle(n int, next func(int) []int) []int {
	const (
		white = iota
		grey
		black
	)
	color := make([]int, n)
	parent := make([]int, n)
	var cycle []int
	var visit func(int) bool
	visit = func(u int) bool {
		color[u] = grey
		for _, v := range next(u) {
			switch color[v] {
			case grey:
				// Walk back from u to v.
				cycle = []int{v}
				for w := u; w != v; w = parent[w] {
					cycle = append(cycle, w)
				}
				cycle = append(cycle, v)
				for i, j := 0, len(cycle)-1; i < j; i, j = i+1, j-1 {
					cycle[i], cycle[j] = cycle[j], cycle[i]
				}
				return true
			case white:
				parent[v] = u
				if visit(v) {
					return true
				}
			}
		}
		color[u] = black
		return false
	}
	for i := 0; i < n; i++ {
		if color[i] == white && visit(i) {
			return cycle
		}
	}
	return nil
}

// reachable marks every node reachable from the roots.
func reachable(n int, roots []int, next func(int) []int) []bool {
	seen := make([]bool, n)
	stack := append([]int(nil), roots...)
	for len(stack) > 0 {
		u := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if seen[u] {
			continue
		}
		seen[u] = true
		stack = append(stack, next(u)...)
	}
	return seen
}
