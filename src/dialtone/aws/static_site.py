"""The phone's static files (`dialtone web build`'s folder) on S3, optionally behind CloudFront.

Everything under `assets/<digest>/` is content-addressed, so it is cached for a year and never
changes; `index.html` and `config.json` are revalidated on every visit (`no-cache`). Uploads go
assets first, `config.json`, then `index.html` last: a visitor never gets a page whose assets
are not there yet. Old asset folders stay: pages already open or cached in browsers use them.

Needs boto3 (`pip install 'dialtone[aws]'`); the clients are passed in, so tests can use moto.
"""

from __future__ import annotations

import mimetypes
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

ASSETS = "assets"
IMMUTABLE = "public, max-age=31536000, immutable"
NO_CACHE = "no-cache"
# Explicit, because mimetypes depends on the machine's /etc/mime.types and has no charsets.
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".wav": "audio/wav",
}
# The pages CloudFront must fetch again after a deploy; the assets have new names instead.
ENTRY_POINTS = ("", "index.html", "config.json")

# boto3 ships no type information; its clients are dynamic objects.
S3Client = Any
CloudFrontClient = Any


class DeployError(Exception):
    """AWS refused or could not be reached; a one-line message naming the bucket or
    distribution."""


@dataclass(frozen=True)
class Uploaded:
    key: str
    size: int
    content_type: str
    cache_control: str


def content_type(name: str) -> str:
    suffix = Path(name).suffix.lower()
    if suffix in CONTENT_TYPES:
        return CONTENT_TYPES[suffix]
    guessed, _encoding = mimetypes.guess_type(name)
    return guessed or "application/octet-stream"


def cache_control(relative: str) -> str:
    return IMMUTABLE if relative.startswith(f"{ASSETS}/") else NO_CACHE


def upload_order(relative: str) -> tuple[int, str]:
    """Assets, anything else, config.json, index.html: each file is in place before
    anything that refers to it."""
    if relative.startswith(f"{ASSETS}/"):
        rank = 0
    elif relative == "config.json":
        rank = 2
    elif relative == "index.html":
        rank = 3
    else:
        rank = 1
    return rank, relative


def key_for(prefix: str, relative: str) -> str:
    prefix = prefix.strip("/")
    return f"{prefix}/{relative}" if prefix else relative


def upload_site(
    folder: Path,
    bucket: str,
    prefix: str,
    s3_client: S3Client,
    progress: Callable[[Uploaded], None] | None = None,
) -> list[Uploaded]:
    """Every file of `folder` to s3://bucket/prefix/, in upload_order."""
    files = sorted(
        (path.relative_to(folder).as_posix() for path in folder.rglob("*") if path.is_file()),
        key=upload_order,
    )
    uploaded = []
    for relative in files:
        data = (folder / relative).read_bytes()
        item = Uploaded(
            key_for(prefix, relative), len(data), content_type(relative), cache_control(relative)
        )
        try:
            s3_client.put_object(
                Bucket=bucket,
                Key=item.key,
                Body=data,
                ContentType=item.content_type,
                CacheControl=item.cache_control,
            )
        except (BotoCoreError, ClientError) as exc:
            raise DeployError(
                f"cannot upload to s3://{bucket}/{item.key}: {describe(exc)}"
            ) from exc
        uploaded.append(item)
        if progress:
            progress(item)
    return uploaded


def invalidation_paths(prefix: str = "") -> list[str]:
    """`/`, `/index.html`, `/config.json`; with a prefix, those under it as well (as the
    viewer sees them when the distribution's origin is the bucket root), and the bare ones
    (when the origin path is the prefix)."""
    paths = [f"/{name}" for name in ENTRY_POINTS]
    prefix = prefix.strip("/")
    if prefix:
        paths += [f"/{prefix}/{name}" for name in ENTRY_POINTS]
    return paths


def invalidate(distribution_id: str, cloudfront_client: CloudFrontClient, prefix: str = "") -> str:
    """A CloudFront invalidation of the page and its config; returns its id."""
    paths = invalidation_paths(prefix)
    try:
        response = cloudfront_client.create_invalidation(
            DistributionId=distribution_id,
            InvalidationBatch={
                "Paths": {"Quantity": len(paths), "Items": paths},
                # Unique per run: CloudFront treats a repeated reference as the same request.
                "CallerReference": f"dialtone-{uuid.uuid4()}",
            },
        )
    except (BotoCoreError, ClientError) as exc:
        raise DeployError(
            f"cannot invalidate CloudFront distribution {distribution_id}: {describe(exc)}"
        ) from exc
    return response["Invalidation"]["Id"]


def distribution_url(distribution_id: str, cloudfront_client: CloudFrontClient) -> str | None:
    """The distribution's https URL (its first alias, else its cloudfront.net name), or None
    when it cannot be read: only a hint, never a reason to fail a finished deploy."""
    try:
        distribution = cloudfront_client.get_distribution(Id=distribution_id)["Distribution"]
    except (BotoCoreError, ClientError):
        return None
    aliases = distribution.get("DistributionConfig", {}).get("Aliases", {}).get("Items") or []
    return f"https://{aliases[0] if aliases else distribution['DomainName']}"


def describe(exc: BotoCoreError | ClientError) -> str:
    """One line for a botocore failure: the service's error code and message for a refusal
    (NoSuchBucket, AccessDenied, …), botocore's sentence otherwise (no credentials, no
    network)."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        text = f"{error.get('Code') or 'error'}: {error.get('Message') or exc}"
    else:
        text = f"{type(exc).__name__}: {exc}"
    return " ".join(text.split())  # one line, whatever the service sent
