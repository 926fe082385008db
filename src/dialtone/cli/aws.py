"""`dialtone aws package`: the Lambda deployment package for deploy/aws/template.yaml."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TextIO

from dialtone.cli.common import CommandError


def cmd_package(args: argparse.Namespace, stdin: TextIO, out: TextIO) -> None:
    from dialtone.aws.lambda_package import PackageError, build

    try:
        package = build(
            Path(args.out),
            architecture=args.arch,
            python=args.python,
            interpreter=args.interpreter,
            progress=lambda message: print(message, file=out, flush=True),
        )
    except PackageError as exc:
        raise CommandError(str(exc)) from None
    print(package.summary(), file=out)


def register(commands: argparse._SubParsersAction) -> None:
    from dialtone.aws.lambda_package import ARCHITECTURES, PYTHONS

    aws = commands.add_parser("aws", help="deploy the API server to AWS Lambda")
    aws_commands = aws.add_subparsers(dest="aws_command", required=True, metavar="ACTION")
    package = aws_commands.add_parser(
        "package", help="build the Lambda .zip: the server and its wheels, compiled"
    )
    package.add_argument("--arch", choices=list(ARCHITECTURES), default="arm64")
    package.add_argument(
        "--python", choices=list(PYTHONS), default="3.12", help="the Lambda runtime's Python"
    )
    package.add_argument(
        "--interpreter", help="that Python's executable, to compile bytecode (default: PATH)"
    )
    package.add_argument("--out", default="build/lambda.zip", help="default build/lambda.zip")
    package.set_defaults(func=cmd_package)
