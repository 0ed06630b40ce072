"""Process helpers every tandem process uses: logging, allocator, lifeline."""
