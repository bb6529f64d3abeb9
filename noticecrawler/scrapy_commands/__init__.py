"""Scrapy commands of the project (``COMMANDS_MODULE``); a module here named like a stock
command replaces it."""
