#!/usr/bin/env python3
"""Evaluate every webhook vector against one rendered webhook.py, in one process.

    python3 run_vectors.py WEBHOOK_PY VECTORS_JSON

Prints a single JSON object to stdout:

    {"results": [{"name": str, "accepted": bool, "reason": str, "hmac": str|null}, ...]}

in the order of the vectors file. "hmac" is compute_signature() for the vector's
body, stripped timestamp header and secret, or null when the scheme is
'timestamp.body' and that timestamp is absent or not ^[0-9]{1,20}$ (no payload exists).

This script only reports; the caller (the Swift harness) judges the results against
the vectors' "expected" fields, so the exit status is 0 even when verdicts differ.
An exception inside webhook.py for one vector is reported as that vector's reason
("exception: ...", accepted false) so the remaining vectors still run.
Exit status 2, with a message on stderr, when either file cannot be loaded.

Standard library only; webhook.py is imported by path, without its package, which
works because webhook.py must not import Django or its siblings.
"""

import base64
import binascii
import contextlib
import importlib.util
import json
import re
import sys

USAGE = 'usage: run_vectors.py WEBHOOK_PY VECTORS_JSON'
SIGNATURE_HEADER = 'x-noderails-signature'
TIMESTAMP_HEADER = 'x-noderails-timestamp'
# Mirrors the contract's rule for a usable timestamp, so "hmac" is null exactly
# where the vectors' expected_hmac is.
_USABLE_TIMESTAMP = re.compile(r'[0-9]{1,20}')


class LoadError(Exception):
    pass


def load_module(path):
    try:
        spec = importlib.util.spec_from_file_location('forge_webhook_under_test', path)
        if spec is None or spec.loader is None:
            raise LoadError(f'{path}: not a loadable Python file')
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    except LoadError:
        raise
    except BaseException as exc:  # a SyntaxError or SystemExit in the file is a load failure too
        raise LoadError(f'{path}: cannot import: {type(exc).__name__}: {exc}') from exc
    for name in ('verify_signature', 'compute_signature'):
        if not callable(getattr(module, name, None)):
            raise LoadError(f'{path}: has no function {name}()')
    return module


def load_vectors(path):
    try:
        with open(path, 'rb') as handle:
            document = json.loads(handle.read().decode('utf-8'))
        vectors = document['vectors']
        for vector in vectors:
            missing = [key for key in ('name', 'config', 'secret', 'headers', 'now') if key not in vector]
            if missing:
                raise KeyError(f'vector {vector.get("name")!r} lacks {", ".join(missing)}')
            vector['raw_body'] = raw_body(vector)
    except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, binascii.Error) as exc:
        raise LoadError(f'{path}: cannot load vectors: {type(exc).__name__}: {exc}') from exc
    return vectors


def raw_body(vector):
    """The request body as bytes: UTF-8 of "body", or the decoded "body_base64"."""
    if ('body' in vector) == ('body_base64' in vector):
        raise ValueError(f'vector {vector.get("name")!r} needs exactly one of body / body_base64')
    if 'body' in vector:
        return vector['body'].encode('utf-8')
    return base64.b64decode(vector['body_base64'], validate=True)


def evaluate(module, vector):
    config = vector['config']
    signature = vector['headers'].get(SIGNATURE_HEADER)
    timestamp = vector['headers'].get(TIMESTAMP_HEADER)
    try:
        verdict = module.verify_signature(
            vector['secret'],
            vector['raw_body'],
            signature,
            timestamp,
            vector['now'],
            payload_scheme=config['signature_payload'],
            timestamp_unit=config['timestamp_unit'],
            tolerance_seconds=config['tolerance_seconds'],
        )
        accepted, reason = bool(verdict.accepted), str(verdict.reason)
        digest = signature_for(module, vector, timestamp)
    except Exception as exc:  # reported per vector; the harness shows it as a failure
        return {'name': vector['name'], 'accepted': False, 'reason': f'exception: {type(exc).__name__}: {exc}', 'hmac': None}
    return {'name': vector['name'], 'accepted': accepted, 'reason': reason, 'hmac': digest}


def signature_for(module, vector, timestamp):
    scheme = vector['config']['signature_payload']
    stripped = None if timestamp is None else timestamp.strip(' \t')
    usable = stripped is not None and _USABLE_TIMESTAMP.fullmatch(stripped) is not None
    if scheme != 'body' and not usable:
        return None
    return module.compute_signature(vector['secret'], vector['raw_body'], stripped if usable else None, payload_scheme=scheme)


def main(argv):
    if len(argv) != 3:
        print(USAGE, file=sys.stderr)
        return 2
    # Anything webhook.py prints goes to stderr: stdout carries exactly one JSON document.
    with contextlib.redirect_stdout(sys.stderr):
        try:
            module = load_module(argv[1])
            vectors = load_vectors(argv[2])
        except LoadError as exc:
            print(f'run_vectors.py: {exc}', file=sys.stderr)
            return 2
        results = [evaluate(module, vector) for vector in vectors]
    # ASCII-only output, so the reader never depends on the pipe's encoding.
    sys.stdout.write(json.dumps({'results': results}) + '\n')
    return 0


if __name__ == '__main__':
    sys.exit(main(sys.argv))
