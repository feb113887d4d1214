package sessions

import "testing"

func TestMemoryConformance(t *testing.T) {
	runConformance(t, func(t *testing.T) Store { return NewMemoryStore() })
}
