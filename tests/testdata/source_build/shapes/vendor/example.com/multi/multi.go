package multi

func Major() int { return 1 }
