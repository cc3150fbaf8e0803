"""Response bodies of the Hugging Face Hub routes, in the Hub's own (camelCase) field names.

Field names follow what ``huggingface_hub`` parses (``hf_api.py``: ``ModelInfo``,
``RepoSibling``, ``RepoFile``, ``RepoFolder``); the ``weightgate`` block is ours and is kept
by the client as an extra attribute.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

from app.policy.tiers import Tier


class SiblingLfs(BaseModel):
    size: int
    sha256: str
    pointerSize: int


class Sibling(BaseModel):
    rfilename: str
    size: int
    blobId: str
    lfs: SiblingLfs


class ComponentState(BaseModel):
    name: str
    tier: Tier
    downloadable: bool
    opens_to_you_at: datetime | None


class WeightgateInfo(BaseModel):
    version: str
    # The release's own revision (the whole release: what a manifest names); ``sha`` is the
    # commit of what the caller sees now, which differs while something is closed to them.
    release_revision: str
    clearance: Tier
    components: list[ComponentState]


class ModelInfo(BaseModel):
    id: str
    modelId: str
    author: str
    sha: str | None
    private: bool = False
    disabled: bool = False
    # False, or how access requests are decided: "auto" (auto-approve) or "manual".
    gated: Literal["auto", "manual", False]
    createdAt: datetime
    lastModified: datetime | None
    tags: list[str]
    downloads: int = 0
    likes: int = 0
    usedStorage: int
    siblings: list[Sibling]
    weightgate: WeightgateInfo | None


class TreeLfs(BaseModel):
    oid: str
    size: int
    pointerSize: int


class TreeFile(BaseModel):
    type: Literal["file"] = "file"
    path: str
    size: int
    oid: str
    lfs: TreeLfs


class TreeDirectory(BaseModel):
    type: Literal["directory"] = "directory"
    path: str
    oid: str


TreeEntry = TreeFile | TreeDirectory


class GitRef(BaseModel):
    name: str
    ref: str
    targetCommit: str


class GitRefs(BaseModel):
    branches: list[GitRef]
    converts: list[GitRef]
    tags: list[GitRef]
    pullRequests: list[GitRef]


class GitAuthor(BaseModel):
    user: str


class GitCommit(BaseModel):
    id: str
    authors: list[GitAuthor]
    date: datetime
    title: str
    message: str


class AuthCheck(BaseModel):
    """``auth-check``: the caller may download all of the latest release they may know of."""

    id: str
    sha: str  # the commit of what the caller sees (here: all of the release)
    version: str
