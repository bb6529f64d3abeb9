"""Who gets told about a new post, and the pushes that tell them."""
