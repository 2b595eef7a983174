"""Breaking-change check between two directories of OpenAPI 3.1 documents (one file per service).

Breaking: a path or operation removed; a documented success response removed; a parameter added as
required or made required; a request body property added as required; a response property removed.
Called by .ci/steps/openapi.
"""
import json
import os
import pathlib
import sys

METHODS = ("get", "put", "post", "delete", "patch")


def resolve(spec, node):
    while isinstance(node, dict) and "$ref" in node:
        name = node["$ref"].split("/")[-1]
        node = spec.get("components", {}).get("schemas", {}).get(name, {})
    return node


def properties(spec, schema):
    schema = resolve(spec, schema or {})
    props = dict(schema.get("properties", {}))
    required = set(schema.get("required", []))
    for part in schema.get("allOf", []):
        part_props, part_required = properties(spec, part)
        props.update(part_props)
        required |= part_required
    return props, required


def body_schema(op, content_type="application/json"):
    return op.get("requestBody", {}).get("content", {}).get(content_type, {}).get("schema")


def compare(name, old, new):
    problems, additions = [], []
    for path, old_item in old.get("paths", {}).items():
        new_item = new.get("paths", {}).get(path)
        if new_item is None:
            problems.append(f"{name}: {path} removed")
            continue
        for method in METHODS:
            if method not in old_item:
                continue
            where = f"{name}: {method.upper()} {path}"
            old_op, new_op = old_item[method], new_item.get(method)
            if new_op is None:
                problems.append(f"{where} removed")
                continue
            old_params = {(p.get("in"), p.get("name")): p for p in old_op.get("parameters", [])}
            for p in new_op.get("parameters", []):
                key = (p.get("in"), p.get("name"))
                if p.get("required") and not old_params.get(key, {}).get("required"):
                    problems.append(f"{where}: parameter {key[1]} is now required")
            _, old_req = properties(old, body_schema(old_op))
            new_props, new_req = properties(new, body_schema(new_op))
            for field in new_req - old_req:
                problems.append(f"{where}: request field {field} is now required")
            for status, old_resp in old_op.get("responses", {}).items():
                new_resp = new_op.get("responses", {}).get(status)
                if new_resp is None:
                    if status.startswith("2"):
                        problems.append(f"{where}: response {status} removed")
                    continue
                old_schema = old_resp.get("content", {}).get("application/json", {}).get("schema")
                new_schema = new_resp.get("content", {}).get("application/json", {}).get("schema")
                old_fields, _ = properties(old, old_schema)
                new_fields, _ = properties(new, new_schema)
                for field in set(old_fields) - set(new_fields):
                    problems.append(f"{where}: response {status} field {field} removed")
    for path, item in new.get("paths", {}).items():
        for method in METHODS:
            if method in item and method not in old.get("paths", {}).get(path, {}):
                additions.append(f"{name}: {method.upper()} {path} added")
    return problems, additions


def main():
    published, live = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
    if "--update" in sys.argv[3:]:
        published.mkdir(parents=True, exist_ok=True)
        for spec in sorted(live.glob("*.json")):
            document = json.loads(spec.read_text())
            (published / spec.name).write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
        print(f"  ✓ snapshots written to {published}")
        return 0
    problems, additions = [], []
    for spec in sorted(live.glob("*.json")):
        snapshot = published / spec.name
        if not snapshot.exists():
            problems.append(f"{spec.stem}: no published contract in {published} (run with --update)")
            continue
        found, added = compare(spec.stem, json.loads(snapshot.read_text()), json.loads(spec.read_text()))
        problems += found
        additions += added
    for line in additions:
        print(f"  + {line}")
    for line in problems:
        print(f"  ✗ {line}")
    if problems and os.environ.get("AGORA_ALLOW_BREAKING") != "1":
        print(f"  {len(problems)} breaking change(s): label the pull request breaking-change if intended")
        return 1
    print(f"  ✓ {len(list(live.glob('*.json')))} services compatible with their published contracts"
          + (f" ({len(problems)} breaking, allowed)" if problems else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
