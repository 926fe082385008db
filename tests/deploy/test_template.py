"""deploy/aws/template.yaml, proven offline: cfn-lint finds nothing, SAM translates it, the
API routes exactly the app's routes, no secret is in it, the phone's bucket is private, and
the Lambda cold start works with exactly the environment the template gives the functions
(Parameter Store from moto)."""

from __future__ import annotations

import copy
import importlib
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import boto3
import pytest
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse
from twilio.request_validator import RequestValidator

from dialtone.aws.static_site import IMMUTABLE
from dialtone.cli import build_parser
from dialtone.server.app import create_app
from dialtone.server.parameter_store import KNOWN_NAMES, SECRET_NAMES
from tests.conftest import TEST_SETTINGS
from tests.lambda_events import DOMAIN, http_api_event

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "deploy" / "aws" / "template.yaml"
# Variables that say where and how to read the configuration (not settings themselves).
LAMBDA_ONLY = {"DIALTONE_SSM_PARAMETER_PATH", "DIALTONE_API_GATEWAY_BASE_PATH"}
DISTRIBUTION_ORIGIN = {"Fn::Sub": "https://${Distribution.DomainName}"}
SECURITY_HEADERS_POLICY = "67f7725c-6f97-4210-82d7-5512b31e9d03"  # managed SecurityHeadersPolicy
TWILIO_WEBHOOK_SECONDS = 15  # Twilio gives up on a webhook after 15 s in total


@pytest.fixture(scope="module")
def template() -> dict:
    return yaml_parse(TEMPLATE.read_text())


def _resources(template: dict, kind: str) -> dict[str, dict]:
    return {name: r for name, r in template["Resources"].items() if r["Type"] == kind}


def _function(template: dict, name: str) -> dict:
    """A function's properties with the Globals it inherits: its own scalars win (Timeout);
    SAM would merge maps such as Environment, which this template sets in Globals only."""
    properties = template["Resources"][name]["Properties"]
    inherited = template["Globals"]["Function"]
    merged_maps = [k for k in set(properties) & set(inherited) if isinstance(properties[k], dict)]
    assert not merged_maps, f"{name} sets {merged_maps} in Globals and itself"
    return {**inherited, **properties}


def _app_routes() -> set[tuple[str, str]]:
    app = create_app(TEST_SETTINGS, phone=False)
    try:
        # Starlette lists HEAD on every GET route by itself; the HTTP API routes the GET only
        # (nobody sends HEAD to these), so HEAD is left out of the comparison.
        return {
            (route.path, method)
            for route in app.routes
            for method in route.methods
            if method != "HEAD"
        }
    finally:
        app.state.services.db.dispose()


def _template_routes(template: dict) -> set[tuple[str, str]]:
    routes = set()
    for name, event in template["Resources"]["ApiFunction"]["Properties"]["Events"].items():
        assert event["Type"] == "HttpApi", f"{name} is not an HttpApi event"
        properties = event["Properties"]
        assert properties["ApiId"] == {"Ref": "Api"}, f"{name} is not on the template's Api"
        routes.add((properties["Path"], properties["Method"].upper()))
    return routes


def _routes_message(app: set, deployed: set) -> str:
    return (
        f"routed by the template but not served by the app: {sorted(deployed - app)}; "
        f"served by the app but not routed by the template: {sorted(app - deployed)}"
    )


# --- cfn-lint and the SAM translator ---------------------------------------------------


def test_cfn_lint_finds_nothing_not_even_informational():
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from cfnlint.runner import main; sys.exit(main())",
            "--include-checks",
            "I",
            "--regions",
            "us-east-1",
            "ap-northeast-1",
            "--",
            str(TEMPLATE),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert (result.returncode, result.stdout.strip()) == (0, ""), result.stdout + result.stderr


class NoManagedPolicies:
    """The translator's managed policy loader (it would ask IAM): the template names none by
    their short name, so an empty map is the truth."""

    def load(self) -> dict[str, str]:
        return {}


@pytest.fixture(scope="module")
def translated(template) -> dict:
    """The template as CloudFormation, after `sam deploy`/`aws cloudformation package` has
    replaced the local CodeUri with the uploaded object."""
    packaged = copy.deepcopy(template)
    packaged["Globals"]["Function"]["CodeUri"] = "s3://dialtone-artifacts/lambda.zip"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AWS_DEFAULT_REGION", "ap-northeast-1")  # the translator wants one
        return transform(packaged, {}, NoManagedPolicies())


def test_sam_translates_it_into_an_http_api_on_stage_prod_and_arm64_python312_functions(
    translated,
):
    resources = translated["Resources"]
    assert not [r for r in resources.values() if r["Type"].startswith("AWS::Serverless::")]
    apis = _resources(translated, "AWS::ApiGatewayV2::Api")
    assert list(apis) == ["Api"], "one explicit HTTP API, no implicit ServerlessHttpApi"
    stages = _resources(translated, "AWS::ApiGatewayV2::Stage")
    assert [s["Properties"]["StageName"] for s in stages.values()] == ["prod"]
    (stage,) = stages.values()
    assert set(stage["Properties"]["DefaultRouteSettings"]) == {
        "ThrottlingRateLimit",
        "ThrottlingBurstLimit",
    }

    functions = _resources(translated, "AWS::Lambda::Function")
    assert set(functions) == {"ApiFunction", "MigrateFunction"}
    for function in functions.values():
        properties = function["Properties"]
        assert properties["Runtime"] == "python3.12"
        assert properties["Architectures"] == ["arm64"]
        assert properties["Code"] == {"S3Bucket": "dialtone-artifacts", "S3Key": "lambda.zip"}
        assert properties["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    api, migrate = (
        functions["ApiFunction"]["Properties"],
        functions["MigrateFunction"]["Properties"],
    )
    assert api["Handler"] == "dialtone.server.aws_lambda.handler"
    assert migrate["Handler"] == "dialtone.server.aws_lambda.migrate"
    assert api["Timeout"] < TWILIO_WEBHOOK_SECONDS, "a stuck webhook must end before Twilio's"
    assert migrate["Timeout"] > api["Timeout"]
    assert api["MemorySize"] >= 512, "Argon2id and the cold start need CPU, which scales"

    # Only the API function is invocable by API Gateway, once per route.
    permissions = _resources(translated, "AWS::Lambda::Permission")
    assert {p["Properties"]["FunctionName"]["Ref"] for p in permissions.values()} == {"ApiFunction"}
    assert len(permissions) == len(_app_routes())


def test_the_translated_api_routes_exactly_the_app_and_has_cors_for_the_phone(translated):
    body = translated["Resources"]["Api"]["Properties"]["Body"]
    deployed = {
        (path, method.upper())
        for path, methods in body["paths"].items()
        for method in methods
        if method != "options"  # API Gateway answers CORS preflights itself
    }
    app = _app_routes()
    assert deployed == app, _routes_message(app, deployed)
    for methods in body["paths"].values():
        for operation in methods.values():
            integration = operation["x-amazon-apigateway-integration"]
            assert integration["type"] == "aws_proxy"
            assert integration["payloadFormatVersion"] == "2.0"
    assert body["x-amazon-apigateway-cors"]["allowOrigins"] == [DISTRIBUTION_ORIGIN]


# --- routes ----------------------------------------------------------------------------


def test_the_template_routes_exactly_the_apps_routes(template):
    app = _app_routes()
    deployed = _template_routes(template)
    assert not deployed - app, _routes_message(app, deployed)
    assert not app - deployed, _routes_message(app, deployed)


def test_only_the_api_function_has_events_and_the_migrate_function_none(template):
    functions = _resources(template, "AWS::Serverless::Function")
    assert set(functions) == {"ApiFunction", "MigrateFunction"}
    assert "Events" not in functions["MigrateFunction"]["Properties"]


# --- secrets and configuration ---------------------------------------------------------


def test_no_secret_is_a_template_parameter(template):
    secretish = re.compile(
        r"secret|password|passwd|credential|auth|database|dsn|token(?!ttl)", re.I
    )
    for name, parameter in template["Parameters"].items():
        assert not secretish.search(name), f"parameter {name} looks like a secret"
        assert "NoEcho" not in parameter, f"parameter {name} is NoEcho: secrets go in SSM"


def test_the_environment_names_only_known_non_secret_settings(template):
    for name in ("ApiFunction", "MigrateFunction"):
        variables = _function(template, name)["Environment"]["Variables"]
        assert not set(variables) & SECRET_NAMES, f"{name} has a secret in its environment"
        assert set(variables) <= KNOWN_NAMES | LAMBDA_ONLY, (
            f"{name}: not dialtone settings: {sorted(set(variables) - KNOWN_NAMES - LAMBDA_ONLY)}"
        )
        # Every value is a parameter or a constant, never the API's own URL (a cycle).
        for variable, value in variables.items():
            assert isinstance(value, str) or set(value) == {"Ref"}, variable
            if isinstance(value, dict):
                assert value["Ref"] in template["Parameters"], variable
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["DIALTONE_PUBLIC_URL"] == {"Ref": "PublicUrl"}
    assert template["Parameters"]["PublicUrl"]["Default"] == ""
    assert variables["DIALTONE_SSM_PARAMETER_PATH"] == {"Ref": "ParameterPath"}
    # rawPath of an HTTP API named stage starts with the stage.
    stage = template["Resources"]["Api"]["Properties"]["StageName"]
    assert variables["DIALTONE_API_GATEWAY_BASE_PATH"] == f"/{stage}"


def _pattern(template: dict, name: str) -> re.Pattern:
    return re.compile(template["Parameters"][name]["AllowedPattern"])


def test_parameter_patterns_accept_what_dialtone_accepts_and_refuse_the_rest(template):
    def matches(name: str, value: str) -> bool:
        return bool(_pattern(template, name).fullmatch(value))

    for name, parameter in template["Parameters"].items():
        if "AllowedPattern" in parameter and "Default" in parameter:
            assert matches(name, parameter["Default"]), f"{name}'s default is not allowed"
    assert matches("TwilioAccountSid", TEST_SETTINGS.account_sid)
    assert matches("TwilioApiKey", TEST_SETTINGS.api_key)
    assert matches("TwilioTwimlAppSid", TEST_SETTINGS.twiml_app_sid)
    assert not matches("TwilioAccountSid", TEST_SETTINGS.api_key)
    assert not matches("TwilioApiKey", "SK123")
    for good in ("/dialtone/prod", "/dialtone", "/a.b/c_d-e"):
        assert matches("ParameterPath", good), good
    for bad in ("dialtone/prod", "/dialtone/prod/", "/", "", "/dialtone//prod"):
        assert not matches("ParameterPath", bad), bad
    for good in ("", "https://api.example.com", "https://api.example.com/v1"):
        assert matches("PublicUrl", good), good
    for bad in ("http://api.example.com", "https://api.example.com/", "https://a.com/?x=1"):
        assert not matches("PublicUrl", bad), bad
    assert matches("AllowedCountries", "81,1") and not matches("AllowedCountries", "JP")
    ttl = template["Parameters"]["TokenTtlSeconds"]
    assert (ttl["MinValue"], ttl["MaxValue"]) == (60, 86400)  # as config.py checks


def test_the_role_reads_only_the_parameters_under_the_path(template):
    resources = template["Resources"]
    for name in ("ApiFunction", "MigrateFunction"):
        assert resources[name]["Properties"]["Role"] == {"Fn::GetAtt": ["FunctionRole", "Arn"]}
    role = resources["FunctionRole"]["Properties"]
    policies = {p["PolicyName"]: p["PolicyDocument"]["Statement"] for p in role["Policies"][:2]}
    (ssm,) = policies["parameters"]
    assert (ssm["Effect"], ssm["Action"]) == ("Allow", "ssm:GetParametersByPath")
    arn = "arn:${AWS::Partition}:ssm:${AWS::Region}:${AWS::AccountId}:parameter${ParameterPath}"
    assert ssm["Resource"] == [{"Fn::Sub": arn}, {"Fn::Sub": arn + "/*"}]
    (logs,) = policies["logs"]
    assert logs["Resource"] == [
        {"Fn::GetAtt": ["ApiLogGroup", "Arn"]},
        {"Fn::GetAtt": ["MigrateLogGroup", "Arn"]},
    ]
    # The customer key's statement exists only when a key is given.
    condition, key_policy, absent = role["Policies"][2]["Fn::If"]
    assert condition == "HasKmsKey" and absent == {"Ref": "AWS::NoValue"}
    (decrypt,) = key_policy["PolicyDocument"]["Statement"]
    assert (decrypt["Action"], decrypt["Resource"]) == ("kms:Decrypt", {"Ref": "KmsKeyArn"})
    # Nothing grants an action on every resource.
    for statement in [*policies["parameters"], *policies["logs"], decrypt]:
        assert statement["Resource"] != "*"


def test_a_vpc_is_optional_and_both_functions_get_it(template):
    vpc = template["Globals"]["Function"]["VpcConfig"]["Fn::If"]
    assert vpc[0] == "InVpc" and vpc[2] == {"Ref": "AWS::NoValue"}
    assert vpc[1] == {
        "SubnetIds": {"Ref": "SubnetIds"},
        "SecurityGroupIds": {"Ref": "SecurityGroupIds"},
    }
    for name in ("SubnetIds", "SecurityGroupIds"):
        assert template["Parameters"][name]["Default"] == ""


def test_each_function_logs_to_its_own_group_with_a_retention(template):
    groups = set()
    for name in ("ApiFunction", "MigrateFunction"):
        group = template["Resources"][name]["Properties"]["LoggingConfig"]["LogGroup"]["Ref"]
        resource = template["Resources"][group]
        assert resource["Type"] == "AWS::Logs::LogGroup"
        assert 1 <= resource["Properties"]["RetentionInDays"] <= 365
        groups.add(group)
    assert len(groups) == 2


# --- the phone: S3 and CloudFront -------------------------------------------------------


def test_cors_allows_the_phones_distribution_only(template):
    cors = template["Resources"]["Api"]["Properties"]["CorsConfiguration"]
    assert cors["AllowOrigins"] == [DISTRIBUTION_ORIGIN]
    assert "*" not in str(cors)
    assert cors["AllowCredentials"] is False
    assert set(cors["AllowHeaders"]) == {"Content-Type", "Authorization"}
    # The browser's methods, and no more.
    assert set(cors["AllowMethods"]) == {"GET", "POST", "OPTIONS"}
    assert {method for _path, method in _app_routes()} <= set(cors["AllowMethods"])
    assert 0 < cors["MaxAge"] <= 7200  # browsers cap it at two hours or less anyway


def test_the_bucket_is_private_and_readable_only_by_this_distribution(template):
    bucket = template["Resources"]["SiteBucket"]["Properties"]
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["OwnershipControls"]["Rules"] == [{"ObjectOwnership": "BucketOwnerEnforced"}]
    (encryption,) = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"

    policy = template["Resources"]["SiteBucketPolicy"]["Properties"]
    assert policy["Bucket"] == {"Ref": "SiteBucket"}
    allows = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Allow"]
    denies = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    (allow,) = allows
    assert allow["Principal"] == {"Service": "cloudfront.amazonaws.com"}
    assert allow["Action"] == "s3:GetObject"
    source = allow["Condition"]["StringEquals"]["AWS:SourceArn"]["Fn::Sub"]
    assert source.endswith(":distribution/${Distribution}")
    (deny,) = denies
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": False}}
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"


def test_the_distribution_is_https_only_and_honours_cache_control(template):
    resources = template["Resources"]
    config = resources["Distribution"]["Properties"]["DistributionConfig"]
    assert config["DefaultRootObject"] == "index.html"
    assert config["HttpVersion"] == "http2and3"
    assert config["PriceClass"] == {"Ref": "PriceClass"}
    (origin,) = config["Origins"]
    assert origin["DomainName"] == {"Fn::GetAtt": ["SiteBucket", "RegionalDomainName"]}
    assert origin["OriginAccessControlId"] == {"Fn::GetAtt": ["OriginAccessControl", "Id"]}
    behavior = config["DefaultCacheBehavior"]
    assert behavior["ViewerProtocolPolicy"] == "redirect-to-https"
    assert behavior["Compress"] is True
    assert behavior["ResponseHeadersPolicyId"] == SECURITY_HEADERS_POLICY
    assert behavior["CachePolicyId"] == {"Ref": "SiteCachePolicy"}
    assert set(behavior["AllowedMethods"]) == {"GET", "HEAD"}

    cache = resources["SiteCachePolicy"]["Properties"]["CachePolicyConfig"]
    # MinTTL 0: `no-cache` index.html and config.json revalidate on every visit; the
    # immutable assets may stay as long as their Cache-Control says.
    assert cache["MinTTL"] == 0
    max_age = int(re.search(r"max-age=(\d+)", IMMUTABLE).group(1))
    assert cache["MaxTTL"] >= max_age
    keys = cache["ParametersInCacheKeyAndForwardedToOrigin"]
    assert keys["EnableAcceptEncodingGzip"] and keys["EnableAcceptEncodingBrotli"]

    oac = resources["OriginAccessControl"]["Properties"]["OriginAccessControlConfig"]
    assert (
        oac["OriginAccessControlOriginType"],
        oac["SigningBehavior"],
        oac["SigningProtocol"],
    ) == ("s3", "always", "sigv4")


# --- outputs and packaging --------------------------------------------------------------


def test_outputs_say_where_each_value_goes(template):
    outputs = template["Outputs"]
    expected = {
        "PhoneUrl",
        "ApiBaseUrl",
        "IncomingCallUrl",
        "OutgoingCallUrl",
        "StatusCallbackUrl",
        "SiteBucket",
        "DistributionId",
        "MigrateFunctionName",
    }
    assert expected <= set(outputs), sorted(expected - set(outputs))
    for name in expected:
        assert len(outputs[name].get("Description", "")) > 20, f"{name} has no description"
    assert outputs["PhoneUrl"]["Value"] == {"Fn::Sub": "https://${Distribution.DomainName}/"}
    api_base = "https://${Api}.execute-api.${AWS::Region}.${AWS::URLSuffix}/prod"
    assert outputs["ApiBaseUrl"]["Value"] == {"Fn::Sub": api_base}
    app = _app_routes()
    for name, path in {
        "IncomingCallUrl": "/twilio/retrieve_twiml/call_incoming",
        "OutgoingCallUrl": "/twilio/retrieve_twiml/call_outgoing",
        "StatusCallbackUrl": "/twilio/status_callback",
    }.items():
        url, variables = outputs[name]["Value"]["Fn::Sub"]
        assert url == "${Base}" + path and (path, "POST") in app
        # The custom domain when one is given (signatures are checked against it).
        assert variables["Base"]["Fn::If"] == [
            "HasPublicUrl",
            {"Ref": "PublicUrl"},
            {"Fn::Sub": api_base},
        ]


def test_the_code_is_what_dialtone_aws_package_builds_by_default(template):
    function = template["Globals"]["Function"]
    args = build_parser().parse_args(["aws", "package"])
    assert (TEMPLATE.parent / function["CodeUri"]).resolve() == (ROOT / args.out).resolve()
    assert function["Architectures"] == [args.arch]
    assert function["Runtime"] == f"python{args.python}"


# --- the cold start with exactly the template's environment -----------------------------


def _resolve(value: Any, parameters: dict[str, str]) -> str:
    return parameters[value["Ref"]] if isinstance(value, dict) else str(value)


def test_the_lambda_starts_with_the_templates_environment(
    template, mocked_aws, monkeypatch, tmp_path
):
    """The function's environment as CloudFormation would set it from the template (defaults
    and the required SIDs) plus the three SecureStrings under the default ParameterPath:
    the cold start, the migration handler and the API on the named stage all work, and
    signatures are checked against the request context's URL."""
    parameters = {
        name: str(p["Default"]) for name, p in template["Parameters"].items() if "Default" in p
    }
    parameters |= {
        "TwilioAccountSid": TEST_SETTINGS.account_sid,
        "TwilioApiKey": TEST_SETTINGS.api_key,
        "TwilioTwimlAppSid": TEST_SETTINGS.twiml_app_sid,
        "DefaultRegion": "JP",
    }
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    environment = {name: _resolve(value, parameters) for name, value in variables.items()}

    monkeypatch.chdir(tmp_path)  # no developer's .env
    for name in [n for n in list(os.environ) if n.startswith(("TWILIO_", "DIALTONE_"))]:
        monkeypatch.delenv(name)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)

    path = parameters["ParameterPath"]
    ssm = boto3.client("ssm")
    for name, value in {
        "TWILIO_AUTH_TOKEN": TEST_SETTINGS.auth_token,
        "TWILIO_API_SECRET": TEST_SETTINGS.api_secret,
        "DIALTONE_DATABASE_URL": f"sqlite:///{tmp_path / 'dialtone.db'}",
    }.items():
        ssm.put_parameter(Name=f"{path}/{name}", Value=value, Type="SecureString")
    name = "dialtone.server.aws_lambda"
    module = (
        importlib.reload(sys.modules[name])
        if name in sys.modules
        else (importlib.import_module(name))
    )

    for function in ("ApiFunction", "MigrateFunction"):
        handler = template["Resources"][function]["Properties"]["Handler"]
        module_name, attribute = handler.rsplit(".", 1)
        assert module_name == name and callable(getattr(module, attribute)), handler

    assert module.migrate({}, None)["status"] == "ok"

    stage = "/" + template["Resources"]["Api"]["Properties"]["StageName"]
    health = module.handler(
        http_api_event("/healthz", "", b64=False, stage=stage, method="GET"), None
    )
    assert health["statusCode"] == 200, health

    incoming = "/twilio/retrieve_twiml/call_incoming"
    params = {"CallSid": "CA" + "1a" * 16, "From": "+819059876543", "To": "+815031234567"}
    signature = RequestValidator(TEST_SETTINGS.auth_token).compute_signature(
        f"https://{DOMAIN}{stage}{incoming}", params
    )
    signed = module.handler(
        http_api_event(incoming, urlencode(params), b64=True, signature=signature, stage=stage),
        None,
    )
    assert signed["statusCode"] == 200 and "<Response>" in signed["body"], signed
    forged = module.handler(
        http_api_event(incoming, urlencode(params), b64=True, signature="x" * 28, stage=stage),
        None,
    )
    assert forged["statusCode"] == 403
