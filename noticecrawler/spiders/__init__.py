"""Spiders. Catalog boards become spiders through ``loader.CatalogSpiderLoader``; a board that
needs code of its own is a small subclass of an engine in a module of this package."""
