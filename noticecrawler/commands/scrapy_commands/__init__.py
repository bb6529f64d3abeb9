"""Scrapy commands the project replaces (``COMMANDS_MODULE``): ``scrapy crawl``."""
