"""Request and response bodies (they are also the OpenAPI schema at /docs)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Platform = Literal["android", "ios", "web"]


class DeviceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)
    token: str = Field(min_length=1, max_length=4096, description="the FCM registration token")
    platform: Platform


class Device(BaseModel):
    id: int
    token: str
    platform: Platform
    active: bool
    created_at: datetime
    updated_at: datetime


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid")
    keywords: list[str] = Field(default_factory=list, description="any one of them matches")
    negative_keywords: list[str] = Field(
        default_factory=list, description="a post containing any of them does not match"
    )
    boards: list[str] = Field(
        default_factory=list, description="only posts of these boards (empty: every board)"
    )


class Subscriptions(BaseModel):
    model_config = ConfigDict(extra="forbid")
    subscriptions: list[Subscription]


class Board(BaseModel):
    name: str
    url: str
    engine: str
    enabled: bool
    interval: int
    posts: int


class Post(BaseModel):
    id: int
    board: str
    post_id: str
    title: str
    url: str
    author: str | None
    published_at: datetime | None
    category: str | None
    pinned: bool
    attachments: list[Any]
    first_seen_at: datetime
    edited: bool
    deleted: bool


class PostDetail(Post):
    body: str | None
    last_seen_at: datetime
    published_source: str
    revisions: int


class PostPage(BaseModel):
    items: list[Post]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null: end")


class Notification(BaseModel):
    id: int
    post_id: int
    board: str
    title: str
    url: str
    device_id: int
    platform: Platform
    status: str
    attempts: int
    error: str | None
    created_at: datetime
    updated_at: datetime


class CrawlQueued(BaseModel):
    board: str
    task_id: str


class BoardHealth(BaseModel):
    board: str
    status: Literal["ok", "failing", "stale", "never"]
    detail: str


class Health(BaseModel):
    ok: bool
    boards: list[BoardHealth]
