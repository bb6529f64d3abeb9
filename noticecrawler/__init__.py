"""noticecrawler: watch notice boards, store every post once, push the new ones."""
