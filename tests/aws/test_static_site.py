"""`dialtone web deploy`: the real CLI in-process against moto's S3 and CloudFront (no network).

The bucket must end up holding exactly what `dialtone web build` writes, each file with the
type browsers need and the caching the layout allows (assets immutable, the page and its
config revalidated), and the page's references must all be keys in the bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

import boto3
import pytest
from botocore.stub import Stubber

from dialtone.aws import static_site
from dialtone.cli import main
from dialtone.server.web import SDK, VENDOR

API_BASE = "https://abc.execute-api.ap-northeast-1.amazonaws.com/prod"
BUCKET = "phone-site"
IMMUTABLE = "public, max-age=31536000, immutable"
# What each kind of file must be served as (written out here, not imported, on purpose).
CONTENT_TYPES = {
    ".html": ("text/html; charset=utf-8",),
    ".js": ("text/javascript; charset=utf-8", "application/javascript; charset=utf-8"),
    ".css": ("text/css; charset=utf-8",),
    ".json": ("application/json",),
    ".wav": ("audio/wav",),
}

pytestmark = pytest.mark.skipif(
    not SDK.exists(), reason="the Voice SDK is not installed (npm ci in src/dialtone/web)"
)


@dataclass
class AWS:
    s3: object
    cloudfront: object
    distribution: str
    domain: str


@pytest.fixture
def aws(mocked_aws, monkeypatch) -> AWS:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")  # buckets without a LocationConstraint
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=BUCKET)
    cloudfront = boto3.client("cloudfront")
    distribution = cloudfront.create_distribution(
        DistributionConfig={
            "CallerReference": "dialtone-test",
            "Comment": "the phone",
            "Enabled": True,
            "Origins": {
                "Quantity": 1,
                "Items": [
                    {
                        "Id": "site",
                        "DomainName": f"{BUCKET}.s3.amazonaws.com",
                        "S3OriginConfig": {"OriginAccessIdentity": ""},
                    }
                ],
            },
            "DefaultCacheBehavior": {
                "TargetOriginId": "site",
                "ViewerProtocolPolicy": "redirect-to-https",
                "MinTTL": 0,
                "ForwardedValues": {"QueryString": False, "Cookies": {"Forward": "none"}},
            },
        }
    )["Distribution"]
    yield AWS(s3, cloudfront, distribution["Id"], distribution["DomainName"])


class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):
        # Files only: not URLs, not in-page references (href="#i-call" to an inline icon).
        self.refs += [
            v
            for k, v in attrs
            if k in ("src", "href") and v and ":" not in v and not v.startswith("#")
        ]


def page_references(html: str) -> list[str]:
    parser = _Refs()
    parser.feed(html)
    return parser.refs


def keys(s3, prefix: str = "") -> set[str]:
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    return {item["Key"] for page in pages for item in page.get("Contents", [])}


def built_files(tmp_path: Path) -> set[str]:
    """What `dialtone web build` writes for the same API: the bucket must hold exactly that."""
    out = tmp_path / "built"
    assert main(["web", "build", str(out), "--api-base", API_BASE]) == 0
    return {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}


def deploy(*extra: str, destination: str = f"s3://{BUCKET}") -> int:
    return main(["web", "deploy", destination, "--api-base", API_BASE, *extra])


def test_deploy_uploads_the_build_with_types_caching_and_an_invalidation(aws, tmp_path, capsys):
    assert deploy("--distribution", aws.distribution) == 0
    out = capsys.readouterr().out

    stored = keys(aws.s3)
    assert stored == built_files(tmp_path)
    (digest,) = {key.split("/")[1] for key in stored if key.startswith("assets/")}
    assert stored - {"index.html", "config.json"} == {
        key for key in stored if key.startswith(f"assets/{digest}/")
    }
    for key in stored:
        head = aws.s3.head_object(Bucket=BUCKET, Key=key)
        assert head["ContentType"] in CONTENT_TYPES[Path(key).suffix], key
        expected = IMMUTABLE if key.startswith("assets/") else "no-cache"
        assert head["CacheControl"] == expected, key

    config = json.loads(aws.s3.get_object(Bucket=BUCKET, Key="config.json")["Body"].read())
    assert config == {"apiBase": API_BASE, "chunderw": None}

    page = aws.s3.get_object(Bucket=BUCKET, Key="index.html")["Body"].read().decode()
    refs = page_references(page)
    assert sorted(refs) == sorted(
        f"assets/{digest}/{name}" for name in ("style.css", *VENDOR, "app.js")
    )
    assert set(refs) <= stored
    # app.js finds the sounds beside itself: they are in the bucket there too.
    assert {f"assets/{digest}/sounds/incoming.wav", f"assets/{digest}/sounds/dtmf0.wav"} <= stored

    (summary,) = aws.cloudfront.list_invalidations(DistributionId=aws.distribution)[
        "InvalidationList"
    ]["Items"]
    invalidation = aws.cloudfront.get_invalidation(
        DistributionId=aws.distribution, Id=summary["Id"]
    )["Invalidation"]
    assert sorted(invalidation["InvalidationBatch"]["Paths"]["Items"]) == [
        "/",
        "/config.json",
        "/index.html",
    ]
    assert f"invalidation {summary['Id']} created on {aws.distribution}" in out
    assert f"uploaded {len(stored)} files" in out
    assert "left in place" in out
    assert f"https://{aws.domain}/" in out


def test_uploads_go_assets_first_then_config_then_the_page(tmp_path):
    class Recorder:
        def __init__(self):
            self.keys: list[str] = []

        def put_object(self, **request):
            self.keys.append(request["Key"])

    built_files(tmp_path)
    recorder = Recorder()
    uploaded = static_site.upload_site(tmp_path / "built", BUCKET, "", recorder)
    assert [item.key for item in uploaded] == recorder.keys
    assert recorder.keys[-2:] == ["config.json", "index.html"]
    assert all(key.startswith("assets/") for key in recorder.keys[:-2])


def test_a_second_deploy_of_the_same_files_uses_the_same_digest(aws, capsys):
    assert deploy() == 0
    first = keys(aws.s3)
    first_page = aws.s3.get_object(Bucket=BUCKET, Key="index.html")["Body"].read()
    assert deploy() == 0
    assert keys(aws.s3) == first
    assert aws.s3.get_object(Bucket=BUCKET, Key="index.html")["Body"].read() == first_page


def test_older_asset_folders_stay_for_pages_already_loaded(aws, capsys):
    aws.s3.put_object(Bucket=BUCKET, Key="assets/0123456789ab/app.js", Body=b"// old")
    assert deploy() == 0
    assert "assets/0123456789ab/app.js" in keys(aws.s3)
    assert len({key.split("/")[1] for key in keys(aws.s3, "assets/")}) == 2


def test_a_prefix_puts_the_site_under_it_and_invalidates_its_page(aws, capsys):
    assert deploy("--distribution", aws.distribution, destination=f"s3://{BUCKET}/phone/") == 0
    stored = keys(aws.s3)
    assert {"phone/index.html", "phone/config.json"} <= stored
    assert all(key.startswith("phone/") for key in stored)
    page = aws.s3.get_object(Bucket=BUCKET, Key="phone/index.html")["Body"].read().decode()
    assert all(f"phone/{ref}" in stored for ref in page_references(page))
    (summary,) = aws.cloudfront.list_invalidations(DistributionId=aws.distribution)[
        "InvalidationList"
    ]["Items"]
    paths = aws.cloudfront.get_invalidation(DistributionId=aws.distribution, Id=summary["Id"])[
        "Invalidation"
    ]["InvalidationBatch"]["Paths"]["Items"]
    assert {"/phone/", "/phone/index.html", "/phone/config.json"} <= set(paths)
    assert f"https://{aws.domain}/phone/" in capsys.readouterr().out


def test_a_missing_bucket_is_one_line_naming_it(aws, capsys):
    assert deploy(destination="s3://no-such-bucket-here") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith("dialtone: error: ") and "s3://no-such-bucket-here/" in err
    assert "NoSuchBucket" in err


def test_an_unknown_distribution_is_one_line_naming_it(aws, capsys):
    assert deploy("--distribution", "E0000000000000") == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "E0000000000000" in err and "Traceback" not in err


def test_no_credentials_is_one_line(monkeypatch, tmp_path, capsys):
    # No mock: botocore fails while signing, before it sends anything; the endpoint is a
    # closed local port all the same, so nothing could reach AWS.
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:9")
    assert deploy() == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert f"s3://{BUCKET}/" in err and "NoCredentialsError" in err


def test_access_denied_is_one_line_naming_the_bucket(monkeypatch, tmp_path):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    s3 = boto3.client("s3", region_name="us-east-1")
    (tmp_path / "index.html").write_text("<!doctype html>")
    with Stubber(s3) as stub:
        stub.add_client_error(
            "put_object",
            service_error_code="AccessDenied",
            service_message="Access Denied\nfor this key",
            http_status_code=403,
        )
        with pytest.raises(static_site.DeployError) as refused:
            static_site.upload_site(tmp_path, BUCKET, "", s3)
    assert str(refused.value) == (
        f"cannot upload to s3://{BUCKET}/index.html: AccessDenied: Access Denied for this key"
    )


def test_bad_destinations_are_refused_before_anything_happens(capsys):
    assert deploy(destination="phone-site") == 1
    assert deploy(destination="s3:///prefix") == 1
    assert "s3://BUCKET[/prefix]" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("index.html", "text/html; charset=utf-8"),
        ("assets/x/app.js", "text/javascript; charset=utf-8"),
        ("assets/x/style.css", "text/css; charset=utf-8"),
        ("config.json", "application/json"),
        ("assets/x/sounds/ring.wav", "audio/wav"),
        ("assets/x/icon.svg", "image/svg+xml"),
        ("assets/x/blob.dialtone-unknown", "application/octet-stream"),
    ],
)
def test_content_types(name, expected):
    assert static_site.content_type(name) == expected
