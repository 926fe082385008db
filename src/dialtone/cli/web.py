"""`dialtone web …`: the browser phone as static files for a static host, and on S3."""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from dialtone.cli.common import CommandError

# index.html's references to its assets, exactly as written there; the build points each into
# assets/<digest>/ and refuses an index.html where one is missing or doubled.
REFERENCES = {
    "style.css": 'href="style.css"',
    "vendor/twilio.min.js": 'src="vendor/twilio.min.js"',
    "vendor/libphonenumber.js": 'src="vendor/libphonenumber.js"',
    "app.js": 'src="app.js"',
}
DIGEST_LENGTH = 12  # hex digits: 48 bits, plenty to tell builds apart


@dataclass(frozen=True)
class Site:
    folder: Path
    digest: str

    @property
    def assets(self) -> str:
        return f"assets/{self.digest}"


def _sources() -> tuple[str, dict[str, bytes]]:
    """index.html's text, and everything the page loads besides itself and config.json, by
    path relative to the page."""
    from dialtone.server import sounds
    from dialtone.server.web import VENDOR, WEB

    missing = [name for name, path in VENDOR.items() if not path.exists()]
    if missing:
        raise CommandError(
            f"the phone's npm packages are not installed ({', '.join(missing)}): "
            "run `npm ci` in src/dialtone/web"
        )
    assets = {name: (WEB / name).read_bytes() for name in ("app.js", "style.css")}
    assets |= {name: path.read_bytes() for name, path in VENDOR.items()}
    for name in sounds.NAMES:
        assets[f"sounds/{name}.wav"] = sounds.wav(name)
    return (WEB / "index.html").read_text(encoding="utf-8"), assets


def digest(assets: dict[str, bytes]) -> str:
    """A short sha256 over the assets' names and bytes: same files, same folder; any change,
    a new folder, so the old one can stay cached forever."""
    hashed = hashlib.sha256()
    for name in sorted(assets):
        data = assets[name]
        # Lengths first, so no two different sets of files hash the same bytes.
        hashed.update(len(name).to_bytes(8, "big") + name.encode())
        hashed.update(len(data).to_bytes(8, "big") + data)
    return hashed.hexdigest()[:DIGEST_LENGTH]


class _References(HTMLParser):
    """The page's local src/href values (what the browser will fetch beside the page)."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            return  # links are navigation, not assets
        for name, value in attrs:
            if name in ("src", "href") and value and is_local(value):
                self.found.append(value)


def is_local(url: str) -> bool:
    """Fetched from the page's own host: not data:/https:/…, not //other.host, not #here."""
    return not (url.startswith(("#", "//")) or urlsplit(url).scheme)


def local_references(page: str) -> list[str]:
    parser = _References()
    parser.feed(page)
    parser.close()
    return parser.found


def rewrite_index(page: str, folder: str) -> str:
    """index.html with its asset references pointing into `folder`; fails loudly when the page
    no longer has exactly the references this build knows how to ship."""
    found = local_references(page)
    if sorted(found) != sorted(REFERENCES):
        raise CommandError(
            f"index.html refers to {sorted(found)}, but `dialtone web build` ships exactly "
            f"{sorted(REFERENCES)}: update REFERENCES in dialtone/cli/web.py"
        )
    for name, attribute in REFERENCES.items():
        if page.count(attribute) != 1:
            raise CommandError(f"index.html must contain {attribute} exactly once")
        page = page.replace(attribute, attribute.replace(f'"{name}"', f'"{folder}/{name}"'))
    return page


def build_site(target: Path, api_base: str, chunderw: str | None) -> Site:
    """The phone's files in `target`: index.html and config.json at the top, everything else
    under assets/<digest>/ (long-cacheable). Shared by `web build` and `web deploy`."""
    import json

    index, assets = _sources()
    site_digest = digest(assets)
    folder = f"assets/{site_digest}"
    page = rewrite_index(index, folder)
    for name, data in sorted(assets.items()):
        path = target / folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    config = {"apiBase": api_base, "chunderw": chunderw}
    (target / "config.json").write_text(json.dumps(config, indent=2) + "\n", encoding="utf-8")
    (target / "index.html").write_text(page, encoding="utf-8")
    # The same check a browser would make: every local reference of the page is a file here.
    missing = [ref for ref in local_references(page) if not (target / ref).is_file()]
    if missing:
        raise CommandError(f"the built index.html refers to missing files: {missing}")
    return Site(target, site_digest)


def _api_base(value: str) -> str:
    api_base = value.rstrip("/")
    if not api_base.startswith(("https://", "http://")):
        raise CommandError("--api-base must be the API server's http(s) URL")
    return api_base


def cmd_build(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """`dialtone web build OUT`: the phone as static files for any static host (the seeds'
    S3 layout), talking to the API server at --api-base (which must allow this origin in
    DIALTONE_CORS_ORIGINS)."""
    api_base = _api_base(args.api_base)
    site = build_site(Path(args.out), api_base, args.chunderw)
    print(
        f"built the phone in {site.folder} for the API at {api_base} "
        f"(assets in {site.assets}/; older assets/ folders there are left for cached pages)",
        file=out,
    )


def parse_s3_url(url: str) -> tuple[str, str]:
    """s3://BUCKET[/prefix] → (bucket, prefix without slashes at either end)."""
    if not url.startswith("s3://"):
        raise CommandError(f"expected s3://BUCKET[/prefix], got {url!r}")
    bucket, _, prefix = url.removeprefix("s3://").partition("/")
    if not bucket:
        raise CommandError(f"no bucket in {url!r}: expected s3://BUCKET[/prefix]")
    return bucket, prefix.strip("/")


def cmd_deploy(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    """`dialtone web deploy s3://BUCKET[/prefix]`: build, upload (assets, config.json, then
    index.html), and with --distribution invalidate CloudFront's copy of the page."""
    import tempfile

    if importlib.util.find_spec("boto3") is None:
        raise CommandError("`dialtone web deploy` needs boto3: pip install 'dialtone[aws]'")
    bucket, prefix = parse_s3_url(args.destination)
    api_base = _api_base(args.api_base)
    import boto3
    from botocore.exceptions import BotoCoreError

    from dialtone.aws import static_site

    where = f"s3://{bucket}/{prefix + '/' if prefix else ''}"
    with tempfile.TemporaryDirectory(prefix="dialtone-web-") as folder:
        site = build_site(Path(folder), api_base, args.chunderw)
        try:
            s3 = boto3.client("s3")
            uploaded = static_site.upload_site(
                site.folder,
                bucket,
                prefix,
                s3,
                progress=lambda item: print(
                    f"uploaded {item.key} ({item.size} bytes, {item.content_type}, "
                    f"{item.cache_control})",
                    file=out,
                    flush=True,
                ),
            )
        except BotoCoreError as exc:
            raise CommandError(f"cannot reach {where}: {static_site.describe(exc)}") from None
        except static_site.DeployError as exc:
            raise CommandError(str(exc)) from None
    total = sum(item.size for item in uploaded)
    print(f"uploaded {len(uploaded)} files ({total} bytes) to {where}", file=out)
    print(
        f"assets are in {where}{site.assets}/; older assets/ folders are left in place "
        "(pages already open or cached in browsers still load them)",
        file=out,
    )
    url = None
    if args.distribution:
        try:
            cloudfront = boto3.client("cloudfront")
            invalidation = static_site.invalidate(args.distribution, cloudfront, prefix)
        except BotoCoreError as exc:
            raise CommandError(
                f"cannot reach CloudFront distribution {args.distribution}: "
                f"{static_site.describe(exc)}"
            ) from None
        except static_site.DeployError as exc:
            raise CommandError(str(exc)) from None
        paths = ", ".join(static_site.invalidation_paths(prefix))
        print(f"invalidation {invalidation} created on {args.distribution} for {paths}", file=out)
        url = static_site.distribution_url(args.distribution, cloudfront)
    if url:
        page = f"{url}/{prefix + '/' if prefix else ''}"
        print(
            f"open the phone  {page}  (add {url} to DIALTONE_CORS_ORIGINS on the API server)",
            file=out,
        )
    else:
        print(
            f"open the phone at {where}index.html through an HTTPS host in front of the bucket "
            "(CloudFront; the microphone needs a secure context), and add that origin to "
            "DIALTONE_CORS_ORIGINS on the API server",
            file=out,
        )


def register(commands: argparse._SubParsersAction) -> None:
    web = commands.add_parser("web", help="the browser phone as static files")
    web_commands = web.add_subparsers(dest="web_command", required=True, metavar="ACTION")
    api_base_help = "the API server's URL, e.g. https://api.example.com/prod"
    build = web_commands.add_parser("build", help="write the phone's files for a static host")
    build.add_argument("out", help="output directory")
    build.add_argument("--api-base", required=True, help=api_base_help)
    build.add_argument("--chunderw", default=None, help=argparse.SUPPRESS)
    build.set_defaults(func=cmd_build)
    deploy = web_commands.add_parser(
        "deploy", help="build the phone and upload it to S3 (needs 'dialtone[aws]')"
    )
    deploy.add_argument("destination", metavar="s3://BUCKET[/prefix]")
    deploy.add_argument("--api-base", required=True, help=api_base_help)
    deploy.add_argument(
        "--distribution", metavar="ID", help="a CloudFront distribution to invalidate the page in"
    )
    deploy.add_argument("--chunderw", default=None, help=argparse.SUPPRESS)
    deploy.set_defaults(func=cmd_deploy)
