#!/usr/bin/env python3
"""gen_spec.py: generate src/api/spec_table.c from the Rekognition spec.

Reads ../shared/spec/rekognition_face_ops.json (or the path given as the
first argument) and writes the input shapes of the 21 synchronous face
operations as C tables (members, types, required flags, length and value
limits, patterns, enum values, nested shapes, defaults and each operation's
error list). The output is committed so that the repository builds without
../shared; tests/unit/test_api_spec.c checks the table against the JSON when
../shared is present, so drift is caught.

Usage: tools/gen_spec.py [spec.json] [out.c]
"""
import json
import os
import re
import sys

OPS = [
    "CreateCollection", "DescribeCollection", "ListCollections", "DeleteCollection",
    "IndexFaces", "ListFaces", "DeleteFaces", "SearchFaces", "SearchFacesByImage",
    "CreateUser", "DeleteUser", "ListUsers", "AssociateFaces", "DisassociateFaces",
    "SearchUsers", "SearchUsersByImage", "DetectFaces", "CompareFaces",
    "TagResource", "UntagResource", "ListTagsForResource",
]

# The spec file gives TagMap only its entry count. The tag key rule comes from
# the spec's own notes (keys 1-128 chars, not starting with "aws:") and the
# TagKeyList member pattern; the value limit (0-256 chars, same character set; botocore writes it
# as ^([...]*)$, the group is dropped here as it changes nothing)
# is botocore's TagValue shape, which the spec file does not carry.
TAG_KEY = {"min": 1, "max": 128,
           "pattern": "^(?!aws:)[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$"}
TAG_VALUE = {"min": 0, "max": 256,
             "pattern": "^[\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*$"}

TYPE_C = {
    "string": "FL__API_T_STRING", "integer": "FL__API_T_INTEGER", "long": "FL__API_T_INTEGER",
    "float": "FL__API_T_FLOAT", "double": "FL__API_T_FLOAT", "boolean": "FL__API_T_BOOLEAN",
    "blob": "FL__API_T_BLOB",
}


def cstr(s):
    if s is None:
        return "NULL"
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def cnum(v):
    r = repr(float(v))
    return r


class Gen:
    def __init__(self, spec):
        self.spec = spec
        self.out = []
        self.n = 0

    def ident(self, base):
        self.n += 1
        return "sh_%s_%d" % (re.sub(r"[^A-Za-z0-9_]", "_", base), self.n)

    def emit_enum_values(self, name, values):
        ident = "ev_%s_%d" % (name, self.n)
        self.n += 1
        self.out.append("static const char *const %s[] = {%s};" %
                        (ident, ", ".join(cstr(v) for v in values)))
        return ident

    def emit_shape(self, name, ctype, cons, elem=None, key=None, members=None, enum=None):
        """Emit one shape; returns its identifier. cons: dict with min/max/pattern."""
        ev = self.emit_enum_values(name, enum) if enum else None
        mem_ident = None
        if members:
            mem_ident = "mem_%s_%d" % (name, self.n)
            self.n += 1
            rows = []
            for m in members:
                rows.append("    {%s, &%s, %s, %s, %s, %s}," % (
                    cstr(m["name"]), m["shape"], "true" if m["required"] else "false",
                    "true" if m["def_num"] is not None else "false",
                    cnum(m["def_num"]) if m["def_num"] is not None else "0.0",
                    cstr(m["def_str"])))
            self.out.append("static const struct fl__api_member %s[] = {\n%s\n};" %
                            (mem_ident, "\n".join(rows)))
        ident = self.ident(name)
        has_min = "min" in cons
        has_max = "max" in cons
        self.out.append(
            "static const struct fl__api_shape %s = {\n"
            "    .name = %s,\n    .type = %s,\n"
            "    .has_min = %s,\n    .has_max = %s,\n    .min = %s,\n    .max = %s,\n"
            "    .pattern = %s,\n    .enum_values = %s,\n    .n_enum = %d,\n"
            "    .elem = %s,\n    .key = %s,\n    .members = %s,\n    .n_members = %d,\n};" % (
                ident, cstr(name), ctype,
                "true" if has_min else "false", "true" if has_max else "false",
                cnum(cons["min"]) if has_min else "0.0",
                cnum(cons["max"]) if has_max else "0.0",
                cstr(cons.get("pattern")), ev or "NULL", len(enum) if enum else 0,
                "&" + elem if elem else "NULL", "&" + key if key else "NULL",
                mem_ident or "NULL", len(members) if members else 0))
        return ident

    def struct_shape(self, sname):
        sh = self.spec["shapes"][sname]
        members = []
        for mname, m in sh["members"].items():
            ident = self.member_shape(sname + "_" + mname, m["type"], m.get("constraints", {}))
            members.append({"name": mname, "shape": ident, "required": False,
                            "def_num": None, "def_str": None})
        return self.emit_shape(sname, "FL__API_T_STRUCT", {}, members=members)

    def member_shape(self, name, t, cons):
        """Shape for a member with type string t and inline constraints."""
        m = re.fullmatch(r"list<(.+)>", t)
        if m:
            inner = m.group(1)
            ec = {}
            for k in ("min", "max", "pattern"):
                if "member_" + k in cons:
                    ec[k] = cons["member_" + k]
            if "member_enum" in cons:
                ec["enum"] = cons["member_enum"]
            elem = self.member_shape(name + "_member", inner, ec)
            return self.emit_shape(name, "FL__API_T_LIST",
                                   {k: cons[k] for k in ("min", "max") if k in cons}, elem=elem)
        m = re.fullmatch(r"map<string,string>", t)
        if m:
            key = self.emit_shape(name + "_key", "FL__API_T_STRING", TAG_KEY)
            val = self.emit_shape(name + "_value", "FL__API_T_STRING", TAG_VALUE)
            return self.emit_shape(name, "FL__API_T_MAP",
                                   {k: cons[k] for k in ("min", "max") if k in cons},
                                   elem=val, key=key)
        m = re.fullmatch(r"(\w+)\(enum\)", t)
        if m:
            values = cons.get("enum") or self.spec["shapes"][m.group(1)]["enum"]
            return self.emit_shape(m.group(1), "FL__API_T_ENUM", {}, enum=values)
        if t in TYPE_C:
            return self.emit_shape(name, TYPE_C[t],
                                   {k: cons[k] for k in ("min", "max", "pattern") if k in cons},
                                   enum=cons.get("enum"))
        if t in self.spec["shapes"] and "members" in self.spec["shapes"][t]:
            return self.struct_shape(t)
        raise SystemExit("gen_spec: unsupported type %r for %s" % (t, name))


def parse_default(d):
    """Numeric default, or a single upper-case enum token, else (None, None)."""
    if d is None:
        return None, None
    if isinstance(d, (int, float)):
        return float(d), None
    s = str(d).strip()
    if re.fullmatch(r"-?[0-9]+(\.[0-9]+)?", s):
        return float(s), None
    m = re.match(r"([A-Z][A-Z_]+)\b", s)
    if m:
        return None, m.group(1)
    return None, None


def main():
    here = os.path.dirname(os.path.abspath(__file__))
    root = os.path.dirname(here)
    src = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        root, "..", "shared", "spec", "rekognition_face_ops.json")
    dst = sys.argv[2] if len(sys.argv) > 2 else os.path.join(root, "src", "api", "spec_table.c")
    with open(src) as f:
        spec = json.load(f)
    g = Gen(spec)
    op_rows = []
    for op in OPS:
        o = spec["operations"][op]
        members = []
        for mname, m in o["request"]["members"].items():
            ident = g.member_shape(op + "_" + mname, m["type"], m.get("constraints", {}))
            dn, ds = parse_default(m.get("default"))
            members.append({"name": mname, "shape": ident, "required": bool(m["required"]),
                            "def_num": dn, "def_str": ds})
        inp = g.emit_shape(op + "Request", "FL__API_T_STRUCT", {}, members=members)
        errs = "err_%s" % op
        g.out.append("static const char *const %s[] = {%s};" %
                     (errs, ", ".join(cstr(e) for e in o["errors"])))
        op_rows.append("    {%s, %s, &%s, %s, %d, %s}," % (
            cstr(op), cstr(o["target"]), inp, errs, len(o["errors"]),
            cstr(o.get("idempotency_token"))))
    meta = spec.get("_meta", {}).get("source", "")
    text = []
    text.append("/*\n * spec_table.c: input shapes and error lists of the 21 synchronous face\n"
                " * operations.\n *\n"
                " * GENERATED by tools/gen_spec.py from ../shared/spec/rekognition_face_ops.json;\n"
                " * do not edit by hand: rerun `python3 tools/gen_spec.py`.\n"
                " * Source of the spec file: %s\n *\n"
                " * tests/unit/test_api_spec.c compares this table with the JSON when\n"
                " * ../shared is present. TagMap key/value limits are not in the spec file:\n"
                " * see TAG_KEY/TAG_VALUE in the generator.\n */\n" % str(meta).replace("*/", "*_/"))
    text.append('#include "api/spec.h"\n')
    text.append("/* clang-format off */")
    text.extend(g.out)
    text.append("\nconst struct fl__api_op_spec fl__api_spec_ops[] = {")
    text.extend(op_rows)
    text.append("};")
    text.append("const size_t fl__api_spec_n_ops = %d;" % len(OPS))
    text.append("/* clang-format on */")
    with open(dst, "w") as f:
        f.write("\n".join(text) + "\n")


if __name__ == "__main__":
    main()
